"""The image families' recipe section `image:` (image-cls, mim; torch-free): how images are read, sized, normalised
and augmented."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from ftkit.recipe.fields import Section


class ImageSection(Section):
    """Image tasks (image-cls, mim): how images are read, sized, normalised and augmented."""
    size: Optional[int] = Field(
        None, gt=0, description="Side of the square images the model sees; others are resized (bilinear). Default: the "
        "image size of a pre-trained model, else the images' own (all must share one).")
    channels: Optional[Literal[1, 3]] = Field(
        None, description="1: grayscale, 3: RGB (images converted by Pillow's rules). Default: the images' own (all must "
        "share one). Models always take 3 channels, as HF pipelines pass RGB: grayscale is repeated into all three.")
    mean: Optional[list[float]] = Field(
        None, description="Per-channel mean of the pixels scaled to [0, 1] (one value per data channel); default: "
        "computed from the training images (a seeded sample of image.stats_images).")
    std: Optional[list[float]] = Field(None, description="Per-channel standard deviation, as image.mean.")
    stats_images: int = Field(10_000, gt=0, description="Training images sampled to compute image.mean / image.std.")
    augment: list[Literal["crop", "flip"]] = Field(
        default_factory=list, description="Training augmentation, drawn per image from the batch's seed (exact --resume): "
        "crop (pad by image.crop_padding with zeros, take a random crop of the original size), flip (horizontal, p 0.5).")
    crop_padding: int = Field(4, ge=1, description="Pixels of zero padding on each side for the crop augmentation.")
    image_column: str = Field("image", description="Column with the image (a path, relative to the table's folder, or "
                              "an image feature) in csv / jsonl / parquet / hub data.")

    @model_validator(mode="after")
    def _stats(self) -> "ImageSection":
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is not None and len(value) not in (1, 3):
                raise ValueError(f"image.{key}: one value per channel (1 or 3), got {len(value)}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("image.std: every value must be greater than 0")
        return self
