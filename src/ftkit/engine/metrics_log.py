"""What a run writes as it goes: train_log.jsonl (one line per log step), metrics.jsonl (one line per
evaluation), metrics.json (the summary), training_curves.png (redrawn at each evaluation and at the end) and
the experiment trackers' records.

Only the main process writes. Trackers go through accelerate's tracker API (engine/trackers.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from ftkit.engine import curves
from ftkit.engine.rundir import write_json_atomic
from ftkit.wording import round_rate

DRAW_BUDGET = 0.01  # the share of the run's time that redrawing training_curves.png may take (the final draw always happens)


class MetricsLog:
    def __init__(self, out: Path, accelerator, *, metric: Optional[str] = None, greater: Optional[bool] = None,
                 plots: bool = True, trackers: bool = False, log=print):
        self.out, self.acc, self.log = out, accelerator, log
        self.main = accelerator.is_main_process
        self.metric, self.greater = metric, greater
        self.last_eval: Optional[dict] = None
        self.last_train: dict = {}
        self.trackers = self.main and trackers  # accelerator.init_trackers was called (engine/trackers.py)
        self.plots = self.main and plots
        self.draw_s, self.skipped_draws = 0.0, 0  # time spent drawing so far; evaluations whose redraw was skipped
        if self.plots and not curves.available():
            self.plots = False
            log(f"{curves.CURVES_FILE} not drawn: {curves.PLOTS_HINT}")

    def _track(self, values: dict, step: int) -> None:
        if self.trackers:
            self.acc.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)

    def truncate(self, step: int) -> None:
        """On resume: forget what was logged after the checkpoint (it will be redone)."""
        for name in (curves.EVAL_LOG, curves.TRAIN_LOG):
            path = self.out / name
            if self.main and path.is_file():
                keep = [json.dumps(r) for r in curves.read_jsonl(path) if r.get("step", 0) <= step]
                path.write_text("".join(l + "\n" for l in keep))

    def train(self, prog, loss: float, lr: float, tokens_per_s: float, examples_per_s: float,
              extra: Optional[dict] = None) -> None:
        """`extra`: the task's own training metrics (dpo: rewards/..., logps/...), logged beside the loss."""
        extra = extra or {}
        self.last_train = {"train_loss": loss, "lr": lr, "tokens_per_s": tokens_per_s}
        if not self.main:
            return
        row = {"step": prog.step, "tokens": prog.tokens, "examples": prog.examples, "elapsed_s": round(prog.elapsed, 2),
               "loss": loss, **extra, "lr": lr, "tokens_per_s": round(tokens_per_s, 1), "examples_per_s": round_rate(examples_per_s, 2)}
        with open(self.out / curves.TRAIN_LOG, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._track({"train/loss": loss, **{f"train/{k}": v for k, v in extra.items()}, "train/lr": lr,
                     "train/tokens_per_s": tokens_per_s, "train/examples_per_s": examples_per_s}, prog.step)

    def eval(self, prog, metrics: dict, lr: float) -> None:
        self.last_eval = metrics
        if not self.main:
            return
        row = {"step": prog.step, "tokens": prog.tokens, "elapsed_s": round(prog.elapsed, 2), "lr": lr,
               "train_loss": self.last_train.get("train_loss"), **{f"eval_{k}": v for k, v in metrics.items()},
               "metric_for_best": self.metric, "best_step": prog.best_step}
        with open(self.out / curves.EVAL_LOG, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._track({f"eval/{k}": v for k, v in metrics.items()}, prog.step)
        # The picture must not slow training: a redraw is skipped while drawing has taken more than DRAW_BUDGET of
        # the run's time so far (a short run evaluating often would otherwise spend ~10 % of it in matplotlib).
        if self.draw_s <= DRAW_BUDGET * prog.elapsed:
            self.draw()
        else:
            self.skipped_draws += 1

    def draw(self) -> None:
        """Redraw training_curves.png. A picture that fails (a full disk, a matplotlib error) is said once and
        never stops training."""
        if not self.plots:
            return
        t = time.perf_counter()
        try:
            curves.draw_run(self.out, metric=self.metric, greater=self.greater)
        except Exception as e:  # noqa: BLE001 (drawing is a side product of the run)
            self.plots = False
            self.log(f"{curves.CURVES_FILE} not drawn: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
        self.draw_s += time.perf_counter() - t

    def summary(self, summary: dict) -> None:
        if self.main:
            write_json_atomic(self.out / "metrics.json", summary)
            self.draw()
