"""The picture of a masked-image model at work: for a few images, the original, what the model saw (masked
patches grey), its reconstruction of every patch, and the visible patches with the reconstructed ones pasted in.
Drawn with Pillow (no matplotlib needed), each image scaled up so 28-pixel images can be looked at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ftkit.models.anatomy import unwrap
from ftkit.tasks.vision.pixels import to_uint8

COLUMNS = ("original", "masked", "reconstruction", "visible + reconstructed")


def _patch_mask(task, batch) -> torch.Tensor:
    """B x 1 x H x W, 1 where a patch was hidden."""
    return batch.repeat_interleave(task.patch, 1).repeat_interleave(task.patch, 2).unsqueeze(1).float()


def predicted_pixels(model, task, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction in the normalised pixel space of pixel_values, hidden-patch mask B x 1 x H x W)."""
    with torch.no_grad():
        out = model(**batch)
    pixels = batch["pixel_values"]
    if task.mae:
        base = unwrap(model)
        pred = out.logits.float()
        if base.config.norm_pix_loss:  # predictions are per-patch normalised: undo with each target patch's statistics
            target = base.patchify(pixels)
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        recon = base.unpatchify(pred, (pixels.shape[2], pixels.shape[3]))
        mask = out.mask.reshape(-1, task.side, task.side)
    else:
        recon = out.reconstruction.float()
        mask = batch["bool_masked_pos"].reshape(-1, task.side, task.side)
    return recon, _patch_mask(task, mask)


def reconstructions(model, task, items, path: Path, count: int = 8, seed: int = 0, scale: int = 0) -> Path:
    from PIL import Image

    n = min(count, len(items))
    picks = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    batch = task.eval_collate([items[int(i)] for i in picks], np.random.default_rng([seed, 0, 11]))
    was_training = model.training
    model.eval()
    try:
        recon, mask = predicted_pixels(model, task, batch)
    finally:
        model.train(was_training)
    pixels = batch["pixel_values"].float()
    grey = torch.zeros_like(pixels)  # the dataset mean, in normalised space
    panels = [pixels, pixels * (1 - mask) + grey * mask, recon, pixels * (1 - mask) + recon * mask]
    tiles = [to_uint8(p, task.mean, task.std) for p in panels]  # each B x H x W x 3
    h, w = tiles[0].shape[1:3]
    scale = scale or max(1, 112 // h)
    gap = 4
    sheet = Image.new("RGB", (len(panels) * (w * scale + gap) + gap, n * (h * scale + gap) + gap), (255, 255, 255))
    for r in range(n):
        for c, t in enumerate(tiles):
            tile = Image.fromarray(t[r]).resize((w * scale, h * scale), Image.NEAREST)
            sheet.paste(tile, (gap + c * (w * scale + gap), gap + r * (h * scale + gap)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
