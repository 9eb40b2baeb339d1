"""The state of a training run and the small pieces engine/loop.py's steps use: the progress a checkpoint keeps, the
step budget, the stop flag signals set, the pace of the train line, epoch ends, the best model's promotion."""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.errors import UserError
from ftkit.recipe.schema import TrainSection


@dataclass
class Progress:
    step: int = 0
    tokens: int = 0
    examples: int = 0
    evals: int = 0
    best: Optional[float] = None
    best_step: Optional[int] = None
    best_metrics: dict = field(default_factory=dict)
    bad_evals: int = 0
    skipped: int = 0
    elapsed: float = 0.0


def total_steps(cfg: TrainSection, batches_per_epoch: Optional[int], tokens_per_step: Optional[int]) -> int:
    budgets = []
    if cfg.max_steps:
        budgets.append(cfg.max_steps)
    if cfg.max_tokens and tokens_per_step:
        budgets.append(math.ceil(cfg.max_tokens / tokens_per_step))
    if not budgets:
        if batches_per_epoch is None:
            raise UserError("streaming data needs train.max_steps or train.max_tokens")
        budgets.append(max(1, math.ceil(cfg.epochs * batches_per_epoch / cfg.grad_accum)))
    return min(budgets)


class StopRequested:
    """SIGTERM / SIGINT set a flag; the loop checkpoints at the next step boundary and exits."""

    def __init__(self):
        self.signal: Optional[int] = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _handle(self, signum, _frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class Pace:
    """What the train line reports since the last one: summed loss and targets, tokens/s, examples/s; and the ETA
    from this process's own pace (a resumed run starts midway)."""

    def __init__(self, prog: Progress):
        self.prog = prog
        self.start_step, self.t_run = prog.step, time.perf_counter()
        self.restart(time.perf_counter())

    def add(self, loss_sum: float, targets: int) -> None:
        self.loss += loss_sum
        self.targets += targets

    def rates(self, now: float) -> tuple[float, float]:
        span = max(now - self.t_log, 1e-9)
        return (self.prog.tokens - self.tokens) / span, (self.prog.examples - self.examples) / span

    def restart(self, now: float) -> None:
        self.t_log, self.tokens, self.examples, self.loss, self.targets = now, self.prog.tokens, self.prog.examples, 0.0, 0


def all_ranks_take(accelerator, value):
    """The main process's `value`, on every rank."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def epoch_ended(step: int, grad_accum: int, batches_per_epoch: Optional[int]) -> bool:
    """Did optimizer step `step` consume the last micro-batch of an epoch? (Micro-batches run on across
    epochs, so with grad_accum not dividing the epoch this is the step that crossed the boundary.)"""
    if not batches_per_epoch:
        return False
    return (step * grad_accum) // batches_per_epoch > ((step - 1) * grad_accum) // batches_per_epoch


def promote_best(best_dir: Path, out: Path) -> None:
    import os

    for f in best_dir.iterdir():
        os.replace(f, out / f.name)
    best_dir.rmdir()


def progress_bar(accelerator, total: int, initial: int):
    if not accelerator.is_main_process or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)
