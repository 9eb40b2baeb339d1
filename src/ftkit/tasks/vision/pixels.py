"""From uint8 images to the model's `pixel_values`: augmentation, scaling, normalisation, channels.

Augmentation is written on numpy batches (not torchvision: see tasks/vision/sources.py) and draws every
image's random choices from that image's generator (engine/batches.example_rngs: seeded by seed, epoch and
example), so a batch is a pure function of its examples (exact --resume; N processes crop as 1 does).
The steps after it are exactly those of the image processor saved with the model (rescale 1/255, then
normalise per channel): `pipeline("image-classification")` on a PIL image computes what training saw.
Grayscale is repeated into three channels: HF's image pipelines convert every input to RGB first, so a
model that took one channel could not be served by them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ftkit.engine.batches import example_rngs

MODEL_CHANNELS = 3


def augment(images: np.ndarray, ops: Sequence[str], padding: int, rng) -> np.ndarray:
    """images: B x H x W x C uint8; `rng`: one generator per image (or a Generator to split: example_rngs). crop:
    zero-pad by `padding`, cut a random H x W window; flip: mirror left-right with probability 0.5. Both draws
    happen whatever `ops` holds, so adding one op does not move the other's."""
    b, h, w, _ = images.shape
    rngs = example_rngs(rng, b)
    offsets = np.array([r.integers(0, 2 * padding + 1, size=2) for r in rngs]).reshape(b, 2)
    flips = np.array([r.random() < 0.5 for r in rngs], dtype=bool)
    out = images
    if "crop" in ops:
        padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
        out = np.stack([padded[k, y:y + h, x:x + w] for k, (y, x) in enumerate(offsets)])
    if "flip" in ops:
        out = out.copy() if out is images else out
        out[flips] = out[flips, :, ::-1]
    return out


def to_pixels(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """B x H x W x C uint8 -> B x 3 x H x W float32, scaled to [0, 1] and normalised per channel."""
    c = images.shape[-1]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(_per_channel(mean, c), dtype=torch.float32)[:, None, None]
    s = torch.tensor(_per_channel(std, c), dtype=torch.float32)[:, None, None]
    x = (x - m) / s
    return x.expand(-1, MODEL_CHANNELS, -1, -1).contiguous() if c == 1 else x


def pixel_batch(examples: list[dict], mean, std, ops: Sequence[str], padding: int, rng: np.random.Generator,
                train: bool) -> torch.Tensor:
    """pixel_values of a batch of items ({"image": H x W x C uint8}): augmented when training, normalised."""
    images = np.stack([e["image"] for e in examples])
    if train and ops:
        images = augment(images, ops, padding, rng)
    return to_pixels(images, mean, std)


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    values = list(values)
    return values * channels if len(values) == 1 else values


def to_uint8(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """The inverse of to_pixels for pictures: B x 3 x H x W -> B x H x W x 3 uint8 (clipped)."""
    m = torch.tensor(_per_channel(mean, 3))[:, None, None]
    s = torch.tensor(_per_channel(std, 3))[:, None, None]
    x = (pixels.float().cpu() * s + m).clamp(0, 1).mul(255).round().byte()
    return x.permute(0, 2, 3, 1).numpy()


def image_processor(size: int, mean: Sequence[float], std: Sequence[float]):
    """The image processor saved with an image model: resize to size x size (bilinear), rescale 1/255, normalise
    with the training statistics (three channels: pipelines pass RGB). The Pillow backend: it needs no torchvision."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=True, size={"height": size, "width": size}, resample=2, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=_per_channel(mean, 3),
                                image_std=_per_channel(std, 3))
