"""The README's fine-tuning strategies / compression table: for each saved model, on the SST-2 dev set in one
process (so the latencies compare): trainable parameters, dev accuracy, training time, size on disk, CPU latency.

    .venv/bin/python bench/probes/compress_table.py NAME=DIR [NAME=DIR ...] [--batch-size 64] [--repeats 3]

DIR is any model ftkit writes (plain, PEFT adapter, int8). Trainable parameters come from the run's recipe
(the strategy applied to the model again) or, for an adapter, from its weights file; training time from
the run's metrics.json (compress runs: their compression.json's fine-tune). Latency: the best of
`--repeats` passes over the dev set, per batch, after a warm-up batch; threads: torch's default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ftkit import registry

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT.parent / "shared" / "data" / "sst2" / "glue" / "dev.tsv"


def trainable(path: Path) -> int:
    from safetensors import safe_open

    from ftkit.models import saved

    if saved.kind(str(path)) == "adapter":
        with safe_open(str(path / "adapter_model.safetensors"), framework="pt") as f:
            n = 0
            for k in f.keys():
                shape = f.get_slice(k).get_shape()
                size = 1
                for s in shape:
                    size *= s
                n += size
            return n
    recipe = path / "recipe.yaml"
    if recipe.is_file() and "strategy: freeze" in recipe.read_text():
        from ftkit.models.build import count_parameters
        from ftkit.models.strategy import apply_strategy
        from ftkit.recipe import load_recipe

        r = load_recipe(recipe)
        model = saved.load_model(str(path), registry.entry("cls"))
        for p in model.parameters():
            p.requires_grad_(True)
        apply_strategy(model, r.finetune, registry.entry("cls"), log=lambda m: None)
        return count_parameters(model)[0]
    model = saved.load_model(str(path), registry.entry("cls"))
    return sum(p.numel() for p in model.parameters()) if saved.kind(str(path)) != "int8" else 0


def train_time(path: Path):
    for name, key in (("metrics.json", "train_runtime_s"),):
        f = path / name
        if f.is_file():
            return json.loads(f.read_text()).get(key)
    f = path / "compression.json"
    if f.is_file():
        ft = json.loads(f.read_text()).get("finetune") or {}
        return ft.get("train_runtime_s")
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="NAME=DIR")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    from ftkit.models import saved
    from ftkit.workflows.compress import bench, measure

    rows = []
    for spec in args.models:
        name, _, d = spec.partition("=")
        path = Path(d)
        b = bench(str(path), str(path), "cls", str(DEV), args.batch_size, None, log=lambda m: None)
        model = saved.load_model(str(path), registry.entry("cls"))
        runs = [measure(model, b) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["latency_ms_per_batch"])
        rows.append({"name": name, "dir": str(path), "trainable": trainable(path), "accuracy": best["accuracy"],
                     "train_s": train_time(path), "size_mb": saved.weights_bytes(str(path)) / 2**20,
                     "latency_ms": best["latency_ms_per_batch"], "batches": best["batches"]})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"dev set {DEV.name}, batch {args.batch_size}, {torch.get_num_threads()} threads, best of {args.repeats}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | trainable params | dev accuracy | train time | size on disk | CPU latency / batch of 64 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t = f"{r['train_s']:.0f} s" if r["train_s"] else "-"
        print(f"| {r['name']} | {r['trainable']:,} | {r['accuracy']:.4f} | {t} | {r['size_mb']:.1f} MiB | {r['latency_ms']:.0f} ms |")


if __name__ == "__main__":
    main()
