"""What looking at a run costs: tokens/s of `gpt-shakespeare-char` with everything on (train_log.jsonl,
training_curves.png redrawn at each evaluation, TensorBoard) against everything off (train.plots: false,
train.report_to: []), in one run, alternating the two sides so that the host's drift falls on both.

The time is the run's own train_runtime_s (the loop: steps, evaluations, drawing, tracker writes; not start-up),
so the figure is what a user waits. Evaluations more often than the recipe (every 100 steps instead of 500) make
the cost of drawing 5x as visible as in the shipped recipe.

    .venv/bin/python bench/peers/reporting_cost.py [--steps 600] [--rounds 4] [--eval-every 100]

On a shared 2-core host tokens/s drift by 10-30 % between minutes, more than the effect measured, so each round
runs both sides back to back (in alternating order) and the ratio is the median of the rounds' ratios. The
drawing itself is also timed directly (redrawing the finished run's picture, as the loop does at each evaluation):
its share of the training time is the cost without the host's noise.

Last line: `ratio on/off: X.XXX` (median over rounds of tokens/s with curves and trackers over without; target >= 0.98).
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
ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "gpt-shakespeare-char.yaml"


def run(tmp: Path, name: str, a, on: bool) -> dict:
    out = tmp / name
    overrides = [f"output_dir={out}", f"tokenizer.path={tmp / 'tok'}", f"data.cache_dir={tmp / 'cache'}",
                 f"train.max_steps={a.steps}", f"train.eval_every={a.eval_every}", "train.log_every=10",
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
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--eval-every", type=int, default=100, help="evaluations (and redraws) every N steps")
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
        draw_s = time_drawing(tmp / "on-0")
    ratios = sorted(on["tokens_per_s"] / off["tokens_per_s"] for on, off in zip(sides["on"], sides["off"]))
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    draws = a.steps // a.eval_every + 1  # one per evaluation and one at the end
    train_s = sum(r["train_s"] for r in sides["off"]) / len(sides["off"])
    print(f"drawing training_curves.png: {draw_s * 1000:.0f} ms each; one per evaluation and one at the end would be "
          f"{draws} per run = {100 * draws * draw_s / train_s:.2f} % of a {train_s:.0f} s run without them (the loop skips "
          f"redraws past 1 % of the run's time, so fewer are drawn)")
    print(f"round ratios on/off: {', '.join(f'{x:.3f}' for x in ratios)} ({a.steps} steps, an evaluation every {a.eval_every})")
    print(f"ratio on/off: {median:.3f}")


def time_drawing(run_dir: Path, repeats: int = 5) -> float:
    """Seconds per redraw of a finished run's curves (the first draw, which imports matplotlib, left out)."""
    import time

    from ftkit.engine import curves

    curves.draw_run(run_dir)
    t = time.perf_counter()
    for _ in range(repeats):
        curves.draw_run(run_dir)
    return (time.perf_counter() - t) / repeats


if __name__ == "__main__":
    main()
