"""What looking at a run costs: tokens/s of `gpt-shakespeare-char` with everything on (train_log.jsonl,
training_curves.png redrawn at each evaluation, TensorBoard) against everything off (train.plots: false,
train.report_to: []), in one run, alternating the two sides so that the host's drift falls on both.

The time is the run's own train_runtime_s (the loop: steps, evaluations, drawing, tracker writes; not start-up),
so the figure is what a user waits. Evaluations more often than the recipe (every 100 steps instead of 500) make
the cost of drawing 5x as visible as in the shipped recipe.

    .venv/bin/python bench/reporting_cost.py [--steps 600] [--rounds 2]

Last line: `ratio on/off: X.XXX` (tokens/s with curves and trackers over without; target >= 0.98).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "gpt-shakespeare-char.yaml"


def run(tmp: Path, name: str, a, on: bool) -> dict:
    out = tmp / name
    overrides = [f"output_dir={out}", f"tokenizer.path={tmp / 'tok'}", f"data.cache_dir={tmp / 'cache'}",
                 f"train.max_steps={a.steps}", "train.eval_every=100", "train.log_every=10",
                 "train.keep_checkpoints=0", "train.keep_checkpoints_at_end=0",
                 f"train.plots={'true' if on else 'false'}", f"train.report_to={'[tensorboard]' if on else '[]'}"]
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", "pretrain", "-r", str(RECIPE), *overrides],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"{name} failed:\n{p.stderr[-2000:]}")
    s = json.loads((out / "metrics.json").read_text())
    return {"tokens_per_s": s["tokens_per_s"], "train_s": s["train_runtime_s"],
            "curves": (out / "training_curves.png").exists(), "tensorboard": (out / "logs").exists()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        subprocess.run([sys.executable, "-m", "ftkit.cli", "tokenize", "-r", str(RECIPE), f"tokenizer.path={tmp / 'tok'}",
                        f"data.cache_dir={tmp / 'cache'}", "--encode"], check=True, capture_output=True, cwd=ROOT)
        sides = {"on": [], "off": []}
        for i in range(a.rounds):
            for side in (("on", "off") if i % 2 == 0 else ("off", "on")):
                r = run(tmp, f"{side}-{i}", a, side == "on")
                assert r["curves"] == r["tensorboard"] == (side == "on"), r
                sides[side].append(r)
                print(f"round {i} {side:>3}: {r['tokens_per_s']:,.0f} tokens/s, {r['train_s']:.1f} s", flush=True)
    mean = {k: sum(r["tokens_per_s"] for r in v) / len(v) for k, v in sides.items()}
    print(f"curves + tensorboard on: {mean['on']:,.0f} tokens/s; off: {mean['off']:,.0f} tokens/s "
          f"({a.steps} steps, an evaluation and a redraw every 100, {a.rounds} rounds)")
    print(f"ratio on/off: {mean['on'] / mean['off']:.3f}")


if __name__ == "__main__":
    main()
