"""ViT image classification: `ftkit finetune --task image-cls` against the transformers Trainer path of
examples/pytorch/image-classification/run_image_classification.py, in one run.

Same model (a ViT built from one config, same seed), data (Fashion-MNIST training images), preprocessing (pad-4
random crop + horizontal flip, rescale, normalise with the same statistics, grayscale repeated to RGB), batch
size, optimizer settings, precision (bf16 autocast where the CPU has it) and steps. The HF side is the example's
recipe: a `datasets` table with an Image feature, `set_transform` doing the augmentation per example on PIL
images (Pillow here, as torchvision's CPU wheels are not available), a collate_fn stacking `pixel_values` and
`labels`, `remove_unused_columns=False`, Trainer. Each side runs in its own process; only training is timed
(each trainer's own runtime); images/s = images trained / that time.

    .venv/bin/python bench/peers/vit_vs_hf.py [--steps 100] [--batch 128]

Last line: `ratio ftkit/hf: X.XX` (ftkit's images/s over the Trainer's).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
FASHION = ROOT.parent / "shared" / "data" / "fashion_mnist"
VIT = {"hidden_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "intermediate_size": 256, "patch_size": 4}
MEAN, STD, LR, PAD = 0.2860, 0.3530, 1e-3, 4


def run_ftkit(tmp: Path, a) -> dict:
    from ftkit.recipe import validate
    from ftkit.workflows import train

    raw = {"task": "image-cls", "output_dir": str(tmp / "ftkit"), "model": {"model_type": "vit", "config": VIT},
           "data": {"train": str(FASHION / "train-images-idx3-ubyte.gz")},
           "image": {"mean": [MEAN], "std": [STD], "augment": ["crop", "flip"], "crop_padding": PAD},
           "train": {"max_steps": a.steps, "batch_size": a.batch, "lr": LR, "schedule": "linear", "warmup_steps": 0,
                     "weight_decay": 0.0, "seed": 0, "eval_every": 0, "log_every": 10, "precision": a.precision,
                     "keep_checkpoints": 0, "keep_checkpoints_at_end": 0}}
    s = train.run(validate(raw), log=lambda *_: None)
    return {"train_s": s["train_runtime_s"], "images": s["examples"], "steps": s["steps"]}


def run_hf(tmp: Path, a) -> dict:
    import datasets
    import numpy as np
    import torch
    from PIL import Image
    from transformers import Trainer, TrainingArguments, ViTConfig, ViTForImageClassification, set_seed

    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    # run_image_classification reads an image dataset: PIL images in an Image column (decoded per access)
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(i) for i in x], "label": y.astype(int).tolist()})
    ds = ds.cast_column("image", datasets.Image())
    rng = np.random.default_rng(0)
    mean = torch.tensor([MEAN] * 3)[:, None, None]
    std = torch.tensor([STD] * 3)[:, None, None]

    def train_transforms(batch):  # the example's RandomCrop/Flip/ToTensor/Normalize, on PIL + numpy
        out = []
        for img in batch["image"]:
            arr = np.asarray(img.convert("RGB"))
            arr = np.pad(arr, ((PAD, PAD), (PAD, PAD), (0, 0)))
            yy, xx = rng.integers(0, 2 * PAD + 1, 2)
            arr = arr[yy:yy + 28, xx:xx + 28]
            if rng.random() < 0.5:
                arr = arr[:, ::-1]
            t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0
            out.append((t - mean) / std)
        batch["pixel_values"] = out
        return batch

    ds.set_transform(train_transforms)

    def collate_fn(examples):
        return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]),
                "labels": torch.tensor([e["label"] for e in examples])}

    set_seed(0)
    cfg = ViTConfig(image_size=28, num_channels=3, num_labels=10, **VIT)
    model = ViTForImageClassification(cfg)
    args = TrainingArguments(output_dir=str(tmp / "hf"), max_steps=a.steps, per_device_train_batch_size=a.batch,
                             learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, seed=0,
                             bf16=a.precision == "bf16", use_cpu=True, save_strategy="no", report_to=[], logging_steps=10,
                             disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False)
    out = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate_fn).train()
    return {"train_s": out.metrics["train_runtime"], "images": out.global_step * a.batch, "steps": out.global_step}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--side", choices=["ftkit", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        print(json.dumps((run_ftkit if a.side == "ftkit" else run_hf)(Path(a.tmp), a)))
        return
    from ftkit.engine.accel import resolve_precision

    prec = resolve_precision(a.precision)
    print(f"ViT ({VIT}) on Fashion-MNIST, {a.steps} steps of {a.batch}, crop + flip, {prec}", flush=True)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("ftkit", "hf"):
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--tmp", tmp, "--steps", str(a.steps),
                                   "--batch", str(a.batch), "--precision", prec], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rates[side] = r["images"] / r["train_s"]
            print(f"{side:<5}: {r['steps']} steps, {r['images']:,} images in {r['train_s']:.1f} s = {rates[side]:,.1f} images/s",
                  flush=True)
    print(f"ratio ftkit/hf: {rates['ftkit'] / rates['hf']:.2f}")


if __name__ == "__main__":
    main()
