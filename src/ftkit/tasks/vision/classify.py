"""Image classification (ViT and the other image models of transformers): the loss, metrics and report of text
classification (tasks/cls/task.py), over batches of pixels.

SPEC: images (tasks/vision/data.py: sources checked, split, converted to one size and channel count) -> class
names -> a model whose head matches them (models/vision.py: new, pre-trained, or an MAE encoder) -> the
image processor saved with the model (tasks/vision/pixels.py), so that `pipeline("image-classification")` serves it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ftkit.engine.loop import check_metric
from ftkit.errors import UserError
from ftkit.models import vision
from ftkit.models.classifier import checkpoint_labels
from ftkit.tasks.cls.report import confusion_png, render_table
from ftkit.tasks.cls.task import SequenceClassification
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.spec import EvalRequest, EvalSetup, Prepared, sample_positions
from ftkit.tasks.vision import data as image_data
from ftkit.tasks.vision.entry import IMAGE_CLS
from ftkit.tasks.vision.pixels import image_processor, pixel_batch


class ImageClassification(SequenceClassification):
    name = "image-cls"

    def __init__(self, labels: list[str], mean: Sequence[float], std: Sequence[float], ops: Sequence[str] = (),
                 padding: int = 4):
        self.set_labels(labels)
        self.mean, self.std, self.ops, self.padding = list(mean), list(std), list(ops), padding

    def _batch(self, examples: list[dict], rng: np.random.Generator, train: bool) -> dict[str, torch.Tensor]:
        batch = {"pixel_values": pixel_batch(examples, self.mean, self.std, self.ops, self.padding, rng, train)}
        if "labels" in examples[0]:
            batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
        return batch

    def collate(self, examples, rng):
        return self._batch(examples, rng, train=True)

    def eval_collate(self, examples, rng):
        return self._batch(examples, rng, train=False)

    def count_tokens(self, batch) -> int:
        return 0


def processor_settings(processor) -> tuple[int, list[float], list[float]]:
    """(size, mean, std) of a saved image processor."""
    size = processor.size  # a SizeDict (attributes height / width / shortest_edge), or a dict in older releases
    side = next((v for v in (getattr(size, k, None) if not isinstance(size, dict) else size.get(k)
                             for k in ("height", "shortest_edge")) if v), None) if not isinstance(size, int) else size
    return int(side), list(processor.image_mean), list(processor.image_std)


def one_channel_stats(stats):
    """A pre-trained model's (mean, std) as given for grayscale data: three equal values -> one."""
    if stats is None:
        return None
    mean, std = stats
    return ([mean[0]], [std[0]]) if len(set(mean)) == 1 and len(set(std)) == 1 else (mean, std)


def prepare(recipe, tokenizer, accelerator, log) -> Prepared:
    size, stats, _ = vision.pretrained_info(recipe)
    data = image_data.load(recipe, True, size, one_channel_stats(stats), log)
    for note in data.notes:
        log(note)
    model, labels = vision.image_classifier(recipe, IMAGE_CLS, data.labels, data.size, log)
    if labels != data.labels:  # a checkpoint's head for the same classes, in its own order
        order = np.array([labels.index(n) for n in data.labels])
        for part in (data.train, data.validation):
            if part is not None:
                part.label_ids = order[part.label_ids]
    task = ImageClassification(labels, data.mean, data.std, recipe.image.augment, recipe.image.crop_padding)
    check_metric(recipe.train, task)
    log(image_data.describe("train", data.train, labels))
    if data.validation is not None:
        log(image_data.describe("validation", data.validation, labels))
    if recipe.image.augment:
        log(f"augmentation: {', '.join(recipe.image.augment)}" + (f" (padding {recipe.image.crop_padding})"
                                                                  if "crop" in recipe.image.augment else ""))
    side = vision.patch_grid(model)[1] if hasattr(model.config, "patch_size") else None
    return Prepared(model, task, data.train, data.validation, image_processor(data.size, data.mean, data.std),
                    eval_seed=recipe.train.seed, seq_len=side * side + 1 if side else None, unit="images",
                    summary={"labels": labels, "image_size": data.size, "image_mean": data.mean, "image_std": data.std})


def evaluation(req: EvalRequest) -> EvalSetup:
    labels = checkpoint_labels(req.model.config, IMAGE_CLS)
    if labels is None:
        raise UserError(f"--model: {req.model_dir} is not an image classifier; fine-tune one with `ftkit finetune --task image-cls`")
    size, mean, std = processor_settings(req.preprocessor)
    recipe = req.recipe
    channels = recipe.image.channels or 3  # grayscale read as RGB is the repeated gray the model was trained on
    if req.data is not None:
        items = image_data.load_eval(req.data, recipe, labels, size, channels)
    else:
        if req.split == "train":
            raise UserError("image models: compress works on text models only")
        loaded = image_data.load(recipe, True, size, one_channel_stats((mean, std)), req.log)
        items = loaded.validation
        if items is None:
            raise UserError(f"--data: {req.model_dir}'s recipe has no validation images; pass --data")
        items.label_ids = image_data.ids_for(items.base, labels, recipe.data.label_map, "data.validation")
    pick = sample_positions(len(items), req.sample)
    if pick is not None:
        items = image_data.Images(items.base.subset(pick), items.channels, items.size, items.label_ids[pick])
    return EvalSetup(ImageClassification(labels, mean, std), items, 0, {"labels": labels},
                     confusion_png(req, labels, req.data or "validation"))


def _render(result: dict) -> str:
    return render_table(result)


def _predict(req):
    from ftkit.tasks.vision.predict import predict  # predict.py imports this module (processor_settings)

    return predict(req)


SPEC = TaskSpec(IMAGE_CLS, prepare=prepare, evaluation=evaluation, render=_render, predict=_predict)
