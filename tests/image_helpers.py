"""Helpers and fixtures of the image tests (tests/vision, the task contract): slices of the real Fashion-MNIST files,
written in each format ftkit reads, and a tiny ViT recipe."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from conftest import DATA, need

FASHION = DATA / "fashion_mnist"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fashion_arrays(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """The first n training images (28 x 28 uint8) and labels of Fashion-MNIST."""
    images = need(FASHION / "train-images-idx3-ubyte.gz")
    with gzip.open(images) as f:
        x = np.frombuffer(f.read(16 + n * 784), np.uint8, offset=16).reshape(-1, 28, 28).copy()
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(8 + n), np.uint8, offset=8).copy()
    return x, y


def write_idx(path: Path, arr: np.ndarray) -> Path:
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())
    return path


def image_folder(root: Path, x: np.ndarray, y: np.ndarray, names=NAMES) -> Path:
    from PIL import Image

    for i, (img, label) in enumerate(zip(x, y)):
        d = root / names[int(label)].replace("/", "-")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    return root


def vit_recipe(tmp_path: Path, data: Path, task: str = "image-cls", **extra) -> dict:
    """A tiny ViT (2 layers of 32) that trains on a few hundred 28 x 28 images in seconds."""
    model = {"model_type": "vit", "config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                             "intermediate_size": 64, "patch_size": 7}}
    recipe = {"task": task, "output_dir": str(tmp_path / "run"), "model": model,
              "data": {"train": str(data), "validation_split": 0.2,
                       "label_map": {i: n for i, n in enumerate(NAMES)}},
              "train": {"max_steps": 30, "batch_size": 32, "lr": 2e-3, "eval_every": 15, "log_every": 5,
                        "precision": "fp32", "warmup_steps": 0}}
    for key, value in extra.items():
        recipe.setdefault(key, {}).update(value) if isinstance(value, dict) else recipe.__setitem__(key, value)
    return recipe
