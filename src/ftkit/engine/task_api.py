"""What a task (clm, mlm, mlm+nsp, cls, ner, ...) tells the engine. Tasks implement this; the engine calls it.

`Task` is the whole contract: the loop and the evaluator read nothing else about a task or a batch (no
tensor names; a batch is a dict of tensors the task collated). `TaskBase` gives the optional parts their
defaults; a task subclasses it and writes the rest.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import numpy as np
import torch


class Task(Protocol):
    name: str
    #: metric name -> True when greater is better; the first key is the default for picking the best model
    metrics: dict[str, bool]
    #: True: the engine saves the best evaluation's model (else the last step's)
    keep_best: bool

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Training batch from examples; all randomness from `rng`. Draw each example's random choices (masks, pairs,
        crops) from its own generator, `engine.batches.example_rngs(rng, len(examples))`, seeded by (seed, epoch,
        example): N processes then collate as 1 does. Draws from `rng` itself are per batch (seeded by the batch
        position and rank): exact on resume, but another split of the global batch draws otherwise."""

    def eval_collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Evaluation batch; its example generators are seeded by (seed, example), so two evaluations agree whatever
        the batch size or the number of processes."""

    def count_targets(self, batch: dict[str, torch.Tensor]) -> int:
        """Number of loss terms in the batch (tokens predicted, or examples): the loss is normalised by
        their total over the whole accumulation window and all ranks."""

    def count_examples(self, batch: dict[str, torch.Tensor]) -> int:
        """Examples (sequences, images) in the batch: the `examples` a run reports."""

    def count_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        """Input tokens in the batch (0 for inputs that are not tokens): tokens/s and train.max_tokens."""

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The SUM of the loss over the batch's targets (not the mean)."""

    # Optional, for a loss that adds a term normalised by another count (mlm+nsp: the mean NSP loss over the pairs;
    # electra: the mean detection loss over all tokens): `window_counts(batch)` -> {name: count}. The engine sums each
    # over the accumulation window and all ranks (with count_targets) and sets `task.window` = {"targets": ..., name:
    # ...} while it calls `loss`, so the term can be scaled by the window's totals (targets / count) instead of
    # the batch's: k micro-batches or N ranks then give the loss of one batch. `task.window` is None elsewhere.

    def eval_step(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Per-batch accumulators keyed by name: numbers (summed over batches and ranks), or sequences, one entry per
        example (arrays of numbers, or lists of texts / records such as generated replies), concatenated over
        batches and ranks in the global batch order: N processes give compute_metrics what 1 process gives."""

    def compute_metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        """Metrics from the accumulators of all batches and ranks."""

    def check_model(self, model: torch.nn.Module) -> None:
        """Raise UserError when the model cannot serve this task (before any training or evaluation)."""

    def logits_and_targets(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, hard targets), one row per target: what distillation compares between teacher and student."""

    def take_train_sums(self) -> dict[str, float]:
        """Sums the task kept over its training batches since the last call (then forgotten); the engine adds them
        over ranks at each log step and logs `train_metrics` of them beside the loss (dpo: rewards, log-probs)."""

    def train_metrics(self, totals: dict[str, float]) -> dict[str, float]:
        """Training-log metrics from `take_train_sums` added over ranks."""

    def nothing_learned(self, metrics: dict[str, Any]) -> Optional[str]:
        """What in an evaluation's metrics shows the model at its floor (one class predicted everywhere, no entity
        found), in a few words; None when nothing does. Said at the end of a run with the likely causes."""


class TaskBase:
    """Defaults of the optional parts of `Task`."""
    keep_best = False
    window: Optional[dict] = None  # set by the engine around `loss` for a task with window_counts (see Task)

    def eval_collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return self.collate(examples, rng)

    def count_examples(self, batch: dict[str, torch.Tensor]) -> int:
        return int(next(iter(batch.values())).shape[0])

    def count_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        ids = batch.get("input_ids")
        return 0 if ids is None else int(ids.numel())

    def check_model(self, model: torch.nn.Module) -> None:
        return None

    def nothing_learned(self, metrics: dict[str, Any]) -> Optional[str]:
        return None

    def take_train_sums(self) -> dict[str, float]:
        return {}

    def train_metrics(self, totals: dict[str, float]) -> dict[str, float]:
        return {}

    def logits_and_targets(self, model, batch):
        raise NotImplementedError(f"task {self.name} does not give per-target logits (no distillation)")
