"""Recipe sections of one task family each (masking, sft, image, distill): kept apart from schema.py, which
holds the sections every run has. Same rules: every key a field, with its type, default and description."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union  # noqa: F401

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from ftkit.recipe.fields import DataFiles, Section


class MaskingSection(Section):
    probability: float = Field(0.15, gt=0.0, lt=1.0, description="Share of tokens selected for masked-LM prediction.")
    eval_probability: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="Share selected when evaluating (default: probability); e.g. train at 0.3 "
        "(more predictions per step, Wettig et al. 2022) and report accuracy at the usual 0.15.")
    mask_random_keep: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Of the selected tokens, the shares that become the mask token, a random token, or "
        "stay as they are (BERT: [0.8, 0.1, 0.1]; [1, 0, 0]: every selected token masked, as good at scale in Wettig et "
        "al. 2022, but a small BERT stayed at the always-'the' baseline without the kept share: bench/probes/mlm_ablation.py). "
        "Sums to 1.")
    whole_word: bool = Field(False, description="Select whole words: all pieces of a word are masked together.")
    eval_seed: int = Field(1234, description="Masking seed for evaluation, so two evaluations of one model agree.")
    mask_patch_size: Optional[int] = Field(
        None, gt=0, description="mim, SimMIM: side in pixels of the square blocks masked together (a multiple of the "
        "model's patch size dividing the image size; default: the patch size).")
    nsp_weight: float = Field(1.0, gt=0.0, description="mlm+nsp: weight of the next-sentence loss next to the mean "
                              "masked-LM loss (BERT: 1). Reported losses are unweighted.")

    @model_validator(mode="after")
    def _shares(self) -> "MaskingSection":
        if min(self.mask_random_keep) < 0 or abs(sum(self.mask_random_keep) - 1.0) > 1e-6:
            raise ValueError(f"masking.mask_random_keep: three shares >= 0 that sum to 1 (mask, random, keep), "
                             f"got {list(self.mask_random_keep)}")
        return self


class ElectraSection(Section):
    """ELECTRA pre-training (task electra): a small generator fills the masked positions, the discriminator finds them."""
    generator_size: float = Field(
        0.25, gt=0.0, le=1.0, description="Generator width as a fraction of the discriminator's (hidden size and heads; "
        "same depth and embeddings). ELECTRA: 1/4 to 1/2 works best; a generator as strong as the discriminator makes "
        "the task too hard.")
    disc_weight: float = Field(50.0, gt=0.0, description="Weight of the mean discriminator loss (every token) next to "
                               "the mean generator MLM loss (masked tokens); ELECTRA: 50.")


class SftSection(Section):
    """Instruction / chat fine-tuning of a causal LM (task sft)."""
    train_on: Literal["assistant", "all"] = Field(
        "assistant", description="Which tokens train: the assistant turns (each with the end-of-turn token that ends "
        "it), or every token.")
    chat_template: Optional[str] = Field(
        None, description="The chat template when the tokenizer has none (base models): chatml, or a Jinja template "
        "string. Default: the tokenizer's own (what inference uses).")
    eval_data: Optional[DataFiles] = Field(
        None, description="Generation evaluation (`ftkit eval --generate` without --data): a file read with the data "
        "settings (entries may give their own column_names). Default: the validation data.")
    eval_rows: Optional[int] = Field(None, gt=0, description="Generation evaluation: the first N rows of it only.")
    answer_pattern: Optional[str] = Field(
        None, description="Generation evaluation: a regular expression whose first group (or whole match) is the answer, "
        "in the reply and in the reference (GSM8K: '#### (-?[\\d,]+)'); default: the first non-empty line.")
    answer_remove: str = Field("", description="Characters removed from both answers before comparing (GSM8K: ',').")
    max_new_tokens: int = Field(64, gt=0, description="Generation evaluation: tokens generated per prompt at most (greedy).")
    # the layout of the examples (data.* keys before sft had its section: SFT_LEGACY_KEYS still read there)
    messages_column: str = Field("messages", description="Format messages: column with the list of {role, content} messages.")
    prompt_column: str = Field("prompt", description="Format prompt_completion: column with the prompt (a string or messages).")
    completion_column: str = Field("completion", description="Format prompt_completion: column with the reply (a string or messages).")
    prompt_template: Optional[str] = Field(None, description="Format template: the user turn, with {column} fields, e.g. "
                                           "'Question: {question}'. Values of data.label_column go through data.label_map.")
    response_template: Optional[str] = Field(None, description="Format template: the assistant turn, e.g. '{answer}'.")
    system_prompt: Optional[str] = Field(None, description="A system turn put first in every example (formats "
                                         "prompt_completion, alpaca, template; messages rows bring their own).")
    packing: bool = Field(False, description="Several examples per block of data.block_size tokens, position ids "
                          "restarting per example and no attention across examples; off: length-grouped batches padded "
                          "to their own longest example.")


class DistillSection(Section):
    """`ftkit compress distill`: model.from_pretrained is the teacher; a smaller student learns its soft targets."""
    student_layers: Optional[Union[PositiveInt, list[NonNegativeInt]]] = Field(
        None, description="Student = a copy of the teacher keeping N of its transformer layers: N keeps the bottom N; "
        "a list keeps those layers (0-based, in order), e.g. [0, 3] or DistilBERT's every other layer.")
    student_config: dict[str, Any] = Field(
        default_factory=dict, description="Or: a new, randomly initialised student from the teacher's config with these "
        "overrides, e.g. {num_hidden_layers: 2, hidden_size: 128, intermediate_size: 512}.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of teacher and student in the KL term.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the soft (KL * T^2) loss; 1 - alpha weighs the hard-label loss.")


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


SFT_LEGACY_KEYS = ("messages_column", "prompt_column", "completion_column", "prompt_template", "response_template",
                   "system_prompt", "packing")  # data.<key> before sft had them in its section
