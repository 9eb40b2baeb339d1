"""The few-labels curve: fine-tune a pre-trained encoder and the same architecture from random weights on 250 / 1,000 /
4,000 / all labelled SST-2 training sentences, and compare their SST-2 dev accuracy.

Both sides use one fine-tuning recipe (below: batch 32, lr 2e-4 with 10 % warmup and a linear decay, dropout 0.1,
the pre-trained run's own tokenizer) and the same seeded samples, classes in proportion (`data.train_examples`, seed = the
run's seed); only the starting weights differ. Steps: 5 epochs of the sample, at least 200 and at most --max-steps.
The 872 dev sentences are scored once, after the last step. Each run is one `ftkit finetune` process.

    .venv/bin/python bench/probes/few_labels.py --pretrained runs/electra-movies [--sizes 250 1000 4000 all] [--seeds 3]
                                         [--seeds-large 1] [--max-steps 2000] [--out bench/results/few_labels-electra]
                                         [--set KEY=VALUE ...] [--sides pretrained scratch]

--set changes the fine-tuning recipe of both sides (e.g. model.config.classifier_pooling=mean: ModernBERT's classifier
averages the token states instead of reading [CLS]); --sides runs one side only (no difference is printed then).

Writes OUT.json and OUT.png (accuracy against labelled sentences, mean and spread per side). Last line:
`few-labels 1000: pretrained X.X vs scratch Y.Y (+Z.Z)` (mean dev accuracies in %).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SST2 = ROOT.parent / "shared" / "data" / "sst2" / "glue"
TRAIN_ROWS = 67_349
SMALL = 1000  # sizes up to this get --seeds runs, larger ones --seeds-large


def recipe(pretrained: Path, scratch: bool, size: int | None, seed: int, steps: int, out: Path) -> dict:
    config = json.loads((pretrained / "config.json").read_text())
    keep = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "embedding_size",
            "max_position_embeddings", "classifier_pooling")
    model = ({"model_type": config["model_type"], "config": {k: config[k] for k in keep if k in config}} if scratch
             else {"from_pretrained": str(pretrained)})
    return {"task": "cls", "output_dir": str(out), "tokenizer": {"path": str(pretrained)}, "model": model,
            "data": {"train": str(SST2 / "train.tsv"), "validation": str(SST2 / "dev.tsv"), "text_column": "sentence",
                     "label_column": "label", "label_map": {0: "negative", 1: "positive"}, "block_size": 128,
                     **({"train_examples": size} if size else {})},
            "train": {"max_steps": steps, "batch_size": 32, "lr": 2e-4, "dropout": 0.1, "schedule": "linear",
                      "warmup_steps": max(1, steps // 10), "weight_decay": 0.01, "betas": [0.9, 0.999], "eval_every": 0,
                      "eval_batch_size": 64, "log_every": 50, "seed": seed, "keep_checkpoints": 0,
                      "keep_checkpoints_at_end": 0, "plots": False, "report_to": []}}


def apply_sets(raw: dict, sets: list[str]) -> dict:
    """--set KEY=VALUE (a dotted recipe key, a YAML value) on a fine-tuning recipe: the same change for both sides."""
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--set {item}: expected KEY=VALUE, e.g. model.config.classifier_pooling=mean")
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return raw


def steps_for(size: int | None, max_steps: int) -> int:
    n = size or TRAIN_ROWS
    return int(min(max_steps, max(200, math.ceil(5 * n / 32))))


def finetune(raw: dict, tmp: Path) -> float:
    path = tmp / f"{Path(raw['output_dir']).name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", "finetune", "--task", "cls", "-r", str(path)],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"fine-tuning failed ({path}):\n{p.stderr[-2000:]}")
    return json.loads((Path(raw["output_dir"]) / "metrics.json").read_text())["final_metrics"]["accuracy"]


def draw(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for side, color in (("pretrained", "tab:blue"), ("scratch", "tab:gray")):
        if not all(r[side] for r in rows):  # a side not run (--sides)
            continue
        xs = [r["labels"] for r in rows]
        means = [100 * statistics.mean(r[side]) for r in rows]
        ax.plot(xs, means, "o-", color=color, label=side)
        for r in rows:
            ax.plot([r["labels"]] * len(r[side]), [100 * a for a in r[side]], ".", color=color, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("labelled SST-2 training sentences")
    ax.set_ylabel("SST-2 dev accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", required=True, help="a pre-training run directory (model + tokenizer)")
    ap.add_argument("--sizes", nargs="+", default=["250", "1000", "4000", "all"])
    ap.add_argument("--seeds", type=int, default=3, help=f"seeds for sizes up to {SMALL}")
    ap.add_argument("--seeds-large", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--out", default=None, help="OUT.json / OUT.png (default bench/results/few_labels-<run name>)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a fine-tuning recipe setting for both sides, e.g. model.config.classifier_pooling=mean")
    ap.add_argument("--sides", nargs="+", default=["pretrained", "scratch"], choices=["pretrained", "scratch"])
    a = ap.parse_args()
    pretrained = Path(a.pretrained)
    if not (pretrained / "config.json").is_file():
        sys.exit(f"--pretrained: no model in {pretrained} (config.json missing)")
    if not (SST2 / "train.tsv").is_file():
        sys.exit(f"dataset not found: {SST2}")
    out = Path(a.out or ROOT / "bench" / "results" / f"few_labels-{pretrained.name}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for s in a.sizes:
            size = None if s == "all" else int(s)
            seeds = a.seeds if size is not None and size <= SMALL else a.seeds_large
            steps = steps_for(size, a.max_steps)
            row = {"labels": size or TRAIN_ROWS, "steps": steps, "pretrained": [], "scratch": []}
            for seed in range(seeds):
                for side in a.sides:
                    raw = recipe(pretrained, side == "scratch", size, seed, steps, tmp / f"{side}-{s}-{seed}")
                    row[side].append(finetune(apply_sets(raw, a.set), tmp))
                print(f"{s:>5} labels, seed {seed}, {steps} steps: " + ", ".join(
                    f"{side} {100 * row[side][-1]:.1f} %" for side in a.sides), flush=True)
            rows.append(row)
    mean = lambda xs: 100 * statistics.mean(xs) if xs else None  # noqa: E731
    spread = lambda xs: f" (±{100 * statistics.stdev(xs):.1f}, n={len(xs)})" if len(xs) > 1 else ""  # noqa: E731
    cell = lambda xs: f"{mean(xs):.1f}{spread(xs)}" if xs else "-"  # noqa: E731
    print(f"\n| labelled sentences | steps | pretrained ({pretrained.name}) | scratch | difference |\n|---|---|---|---|---|")
    for r in rows:
        p, q = mean(r["pretrained"]), mean(r["scratch"])
        diff = f"{p - q:+.1f}" if p is not None and q is not None else "-"
        print(f"| {r['labels']:,} | {r['steps']} | {cell(r['pretrained'])} | {cell(r['scratch'])} | {diff} |")
    out.with_suffix(".json").write_text(json.dumps({"pretrained": str(pretrained), "set": a.set, "rows": rows}, indent=2) + "\n")
    try:
        draw(rows, out.with_suffix(".png"), f"SST-2 dev accuracy: {pretrained.name} vs the same model from scratch")
    except ImportError:
        print("no picture: matplotlib is missing (pip install 'ftkit[plots]')")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    head = next((r for r in rows if r["labels"] == 1000), rows[0])
    p, q = mean(head["pretrained"]), mean(head["scratch"])
    if p is not None and q is not None:
        print(f"few-labels {head['labels']}: pretrained {p:.1f} vs scratch {q:.1f} ({p - q:+.1f})")
    else:
        print(f"few-labels {head['labels']}: " + ", ".join(f"{k} {mean(head[k]):.1f}" for k in a.sides))

if __name__ == "__main__":
    main()
