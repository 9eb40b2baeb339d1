"""A recipe's images, ready to train on: sources read and checked, split, converted, labelled, normalised.

`load` is what image-cls and mim prepare with; `load_eval` reads an evaluation file with a saved model's
settings (its size, channels, statistics and classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ftkit.data.splits import held_out
from ftkit.engine.batches import eval_subset
from ftkit.errors import UserError
from ftkit.tasks.vision import sources as image_sources
from ftkit.tasks.vision.checks import inspect
from ftkit.tasks.vision.images import Images, ImageSet, class_names, pixel_stats


@dataclass
class ImageData:
    train: Images
    validation: Optional[Images]
    channels: int  # of the data (the model always takes 3)
    size: int
    mean: list[float]
    std: list[float]
    labels: Optional[list[str]] = None  # class names, in id order
    notes: list[str] = field(default_factory=list)


def load(recipe, labelled: bool, model_size: Optional[int] = None, model_stats: Optional[tuple] = None,
         log=print) -> ImageData:
    """Training (and validation) images of the recipe. A pre-trained model gives the defaults: `model_size`, its
    image size, and `model_stats`, the (mean, std) of its image processor (what its weights were trained on)."""
    data, image = recipe.data, recipe.image
    train_set = image_sources.load(data.train, data, image, "data.train", labelled)
    if labelled and train_set.labels is None:
        raise UserError("data.train: these images have no labels")
    # every image given, scanned as given (before a split): all problems in one line (channels agree over both
    # sources, sizes within each)
    sources = {"data.train": train_set}
    if data.validation is not None:
        val_set = sources["data.validation"] = image_sources.load(data.validation, data, image, "data.validation", labelled)
    elif data.validation_split > 0:
        train_idx, val_idx = held_out(len(train_set), data, recipe.train.seed, unit="images")
        train_set, val_set = train_set.subset(train_idx), train_set.subset(val_idx)
    else:
        val_set = None
    shape = inspect(sources, image.channels, image.size or model_size)
    channels = image.channels or shape.channels
    size = image.size or model_size or shape.height  # the scan checked that the images are square, of one size
    labels = label_ids = val_ids = None
    if labelled:
        names, labels = class_names(train_set.labels, data.label_map)
        if len(labels) < 2:
            raise UserError(f"data.train ({train_set.source}): only one class ({labels[0]}); classification needs at least two")
        index = {n: i for i, n in enumerate(labels)}
        label_ids = np.array([index[n] for n in names], dtype=np.int64)
        if val_set is not None:
            val_ids = ids_for(val_set, labels, data.label_map, "data.validation")
    notes = []
    if data.train_examples is not None and data.train_examples < len(train_set):
        pick = eval_subset(len(train_set), 1, data.train_examples, recipe.train.seed, label_ids)
        notes.append(f"data.train_examples: a seeded sample of {len(pick):,} of {len(train_set):,} training images"
                     + (" (classes in proportion)" if labelled else ""))
        train_set = train_set.subset(pick)
        label_ids = None if label_ids is None else label_ids[pick]
    train = Images(train_set, channels, size, label_ids)
    validation = Images(val_set, channels, size, val_ids) if val_set is not None else None
    mean, std = image.mean, image.std
    if (mean is None or std is None) and model_stats is not None:
        mean, std = mean or model_stats[0], std or model_stats[1]
        notes.append(f"normalisation of the pre-trained model's image processor: mean {mean}, std {std}")
    if mean is None or std is None:
        m, s = pixel_stats(train, image.stats_images, recipe.train.seed)
        mean, std = mean or m, std or s
        notes.append(f"normalisation from {min(len(train), image.stats_images):,} training images: mean {mean}, std {std}")
    for key, v in (("image.mean", mean), ("image.std", std)):
        if len(v) not in (1, channels):
            raise UserError(f"{key}: {len(v)} values for {channels}-channel images")
    return ImageData(train, validation, channels, size, list(mean), list(std), labels, notes)


def ids_for(images: ImageSet, labels: list[str], label_map: dict, key: str) -> np.ndarray:
    """Class ids of labelled images against known class names; an unknown class is an error naming it."""
    names, _ = class_names(images.labels, label_map)
    index = {n: i for i, n in enumerate(labels)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise UserError(f"{key} ({images.source}): classes {', '.join(unknown[:5])} are not among the model's classes "
                        f"({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})")
    return np.array([index[n] for n in names], dtype=np.int64)


def load_eval(source: str, recipe, labels: Optional[list[str]], size: int, channels: int, key: str = "--data") -> Images:
    """An evaluation file read with a saved model's settings: converted to its size and channels, its classes."""
    images = image_sources.load(source, recipe.data, recipe.image, key, labels is not None)
    inspect({key: images}, channels, size)
    return Images(images, channels, size, None if labels is None else ids_for(images, labels, recipe.data.label_map, key))


def describe(name: str, images: Images, labels: Optional[list[str]]) -> str:
    text = f"{name}: {len(images):,} images ({images.base.source}), {images.size}x{images.size}, " \
           f"{'grayscale' if images.channels == 1 else 'RGB'}"
    if labels is not None and images.label_ids is not None:
        counts = np.bincount(images.label_ids, minlength=len(labels))
        text += f", {len(labels)} classes ({int(counts.min()):,}-{int(counts.max()):,} per class)"
    return text
