"""metrics.jsonl (one line per evaluation), metrics.json (the summary) and TensorBoard events.

Only the main process writes. TensorBoard goes through accelerate's tracker when the
tensorboard package is installed (it is optional).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Optional

from ftkit.engine.rundir import write_json_atomic


class MetricsLog:
    def __init__(self, out: Path, accelerator):
        self.out, self.acc = out, accelerator
        self.main = accelerator.is_main_process
        self.last_eval: Optional[dict] = None
        self.last_train: dict = {}
        self.tb = self.main and importlib.util.find_spec("tensorboard") is not None
        if self.tb:  # set up before the loop starts: the import costs seconds
            self.acc.init_trackers("tensorboard")

    def _tb(self, values: dict, step: int) -> None:
        if self.tb:
            self.acc.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)

    def truncate(self, step: int) -> None:
        """On resume: forget evaluations logged after the checkpoint (they will be redone)."""
        path = self.out / "metrics.jsonl"
        if self.main and path.is_file():
            keep = [l for l in path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= step]
            path.write_text("".join(l + "\n" for l in keep))

    def train(self, prog, loss: float, lr: float, tokens_per_s: float) -> None:
        self.last_train = {"train_loss": loss, "lr": lr, "tokens_per_s": tokens_per_s}
        if self.main:
            self._tb({"train/loss": loss, "train/lr": lr, "train/tokens_per_s": tokens_per_s}, prog.step)

    def eval(self, prog, metrics: dict, lr: float) -> None:
        self.last_eval = metrics
        if not self.main:
            return
        row = {"step": prog.step, "tokens": prog.tokens, "elapsed_s": round(prog.elapsed, 2), "lr": lr,
               "train_loss": self.last_train.get("train_loss"), **{f"eval_{k}": v for k, v in metrics.items()}}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        self._tb({f"eval/{k}": v for k, v in metrics.items()}, prog.step)

    def summary(self, summary: dict) -> None:
        if self.main:
            write_json_atomic(self.out / "metrics.json", summary)
