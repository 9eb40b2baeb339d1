"""Masked-image modelling: MAE (ViTMAEForPreTraining) and SimMIM (ViTForMaskedImageModeling) on unlabelled images.

Both hide patches and learn to reconstruct their pixels; the masks are drawn in collate, each image's from its
own generator (engine/batches.example_rngs; MAE: the `noise` its random masking sorts; SimMIM: blocks of
masking.mask_patch_size pixels), so a batch is a function of its examples: `--resume` is exact and N processes
mask as 1 does. The loss summed over targets, as the engine wants:
MAE's mean over masked patches (of the per-patch mean squared error, on per-patch normalised pixels with
norm_pix_loss) times their number; SimMIM's L1 over masked pixels and channels, summed (HF's is their mean).
At the end of a run (and on `ftkit eval`) a PNG shows a few validation images: original, masked, reconstruction.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.batches import example_rngs
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models import vision
from ftkit.models.anatomy import unwrap
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.spec import EvalRequest, EvalSetup, Prepared
from ftkit.tasks.vision import data as image_data
from ftkit.tasks.vision.classify import one_channel_stats, processor_settings
from ftkit.tasks.vision.entry import MIM
from ftkit.tasks.vision.mim_report import reconstructions
from ftkit.tasks.vision.pixels import image_processor, pixel_batch


def simmim_block(patch: int, size: int, mask_patch: int) -> int:
    """Patches per side of a SimMIM mask block, checked: the block is a multiple of the patch and divides the image."""
    if mask_patch % patch:
        raise UserError(f"masking.mask_patch_size {mask_patch} is not a multiple of the model's patch size {patch}")
    if size % mask_patch:
        raise UserError(f"masking.mask_patch_size {mask_patch} does not divide the image size {size}")
    return mask_patch // patch


class MaskedImageModeling(TaskBase):
    name = "mim"
    metrics = {"loss": False}

    def __init__(self, config, mean: Sequence[float], std: Sequence[float], ratio: float, mask_patch=None,
                 ops: Sequence[str] = (), padding: int = 4):
        self.mae = config.model_type == "vit_mae"
        size = int(config.image_size if not isinstance(config.image_size, (list, tuple)) else config.image_size[0])
        self.patch = int(config.patch_size if not isinstance(config.patch_size, (list, tuple)) else config.patch_size[0])
        self.side = size // self.patch
        self.patches = self.side * self.side
        self.channels = config.num_channels
        self.mean, self.std, self.ratio, self.ops, self.padding = list(mean), list(std), ratio, list(ops), padding
        self.block = 1 if self.mae else simmim_block(self.patch, size, mask_patch or self.patch)
        # MAE keeps int(N * (1 - ratio)) patches (ViTMAEEmbeddings.random_masking); SimMIM masks ceil(blocks * ratio)
        self.masked = self.patches - int(self.patches * (1 - ratio)) if self.mae else \
            math.ceil((self.side // self.block) ** 2 * ratio) * self.block * self.block

    def _batch(self, examples: list[dict], rng, train: bool) -> dict[str, torch.Tensor]:
        rngs = example_rngs(rng, len(examples))
        batch = {"pixel_values": pixel_batch(examples, self.mean, self.std, self.ops, self.padding, rngs, train)}
        b = len(examples)
        if self.mae:
            batch["noise"] = torch.from_numpy(np.stack([r.random(self.patches) for r in rngs])).float()
        else:
            blocks = (self.side // self.block) ** 2
            count = math.ceil(blocks * self.ratio)
            mask = np.zeros((b, blocks), dtype=bool)
            for k, r in enumerate(rngs):
                mask[k, r.choice(blocks, count, replace=False)] = True
            grid = mask.reshape(b, self.side // self.block, self.side // self.block)
            grid = grid.repeat(self.block, axis=1).repeat(self.block, axis=2)
            batch["bool_masked_pos"] = torch.from_numpy(grid.reshape(b, self.patches))
        return batch

    def collate(self, examples, rng):
        return self._batch(examples, rng, train=True)

    def eval_collate(self, examples, rng):
        return self._batch(examples, rng, train=False)

    def count_targets(self, batch) -> int:
        n = int(batch["pixel_values"].shape[0]) * self.masked
        return n if self.mae else n * self.patch * self.patch * self.channels

    def count_tokens(self, batch) -> int:
        return 0

    def loss(self, model, batch) -> torch.Tensor:
        out = model(**batch)
        if self.mae:  # out.loss: the mean over masked patches; times their number = the sum
            return out.loss.float() * out.mask.sum()
        mask = batch["bool_masked_pos"].reshape(-1, self.side, self.side)
        mask = mask.repeat_interleave(self.patch, 1).repeat_interleave(self.patch, 2).unsqueeze(1)
        err = F.l1_loss(out.reconstruction.float(), batch["pixel_values"].float(), reduction="none")
        return (err * mask).sum()

    def eval_step(self, model, batch) -> dict:
        return {"loss_sum": self.loss(model, batch).item(), "count": self.count_targets(batch)}

    def compute_metrics(self, totals) -> dict:
        return {"loss": float(totals["loss_sum"]) / max(int(totals["count"]), 1)}

    def check_model(self, model) -> None:
        base = unwrap(model)
        if not hasattr(base.config, "patch_size"):
            raise UserError(f"{type(base).__name__} is not a masked-image model (MAE or SimMIM)")


def prepare(recipe, tokenizer, accelerator, log) -> Prepared:
    size, stats, _ = vision.pretrained_info(recipe)
    data = image_data.load(recipe, False, size, one_channel_stats(stats), log)
    for note in data.notes:
        log(note)
    model = vision.mim_model(recipe, data.size, log)
    task = MaskedImageModeling(model.config, data.mean, data.std, recipe.masking.probability, recipe.masking.mask_patch_size,
                               recipe.image.augment, recipe.image.crop_padding)
    log(image_data.describe("train", data.train, None))
    if data.validation is not None:
        log(image_data.describe("validation", data.validation, None))
    log(f"mim | {'MAE' if task.mae else 'SimMIM'} | {task.patches} patches of {task.patch}x{task.patch} per image, "
        f"{task.masked} masked"
        + ("" if task.mae else f" in blocks of {task.block * task.patch}x{task.block * task.patch} pixels"))

    def report(trained, out) -> dict:
        shown = data.validation if data.validation is not None else data.train
        path = out / "reconstructions.png"
        reconstructions(trained, task, shown, path, seed=recipe.train.seed)
        log(f"reconstructions of {min(8, len(shown))} {'validation' if data.validation is not None else 'training'} "
            f"images: {path}")
        return {"reconstructions_png": str(path)}

    return Prepared(model, task, data.train, data.validation, image_processor(data.size, data.mean, data.std),
                    eval_seed=recipe.masking.eval_seed, seq_len=task.patches + 1, unit="images",
                    summary={"image_size": data.size, "image_mean": data.mean, "image_std": data.std,
                             "mask_ratio": recipe.masking.probability}, report=report)


def evaluation(req: EvalRequest) -> EvalSetup:
    from pathlib import Path

    size, mean, std = processor_settings(req.preprocessor)
    recipe = req.recipe
    if req.data is not None:
        items = image_data.load_eval(req.data, recipe, None, size, recipe.image.channels or 3)
    else:
        items = image_data.load(recipe, False, size, one_channel_stats((mean, std)), req.log).validation
        if items is None:
            raise UserError(f"--data: {req.model_dir}'s recipe has no validation images; pass --data")
    task = MaskedImageModeling(req.model.config, mean, std, recipe.masking.probability, recipe.masking.mask_patch_size)

    def finish(result: dict) -> None:
        png = Path(req.plot) if req.plot else Path(req.model_dir) / f"reconstructions_{Path(req.data or 'validation').stem}.png"
        reconstructions(req.model, task, items, png, seed=recipe.masking.eval_seed)
        result["reconstructions_png"] = str(png)

    return EvalSetup(task, items, recipe.masking.eval_seed, {"mask_ratio": task.ratio}, finish)


SPEC = TaskSpec(MIM, prepare=prepare, evaluation=evaluation)
