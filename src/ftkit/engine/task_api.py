"""What a task (clm, mlm, mlm+nsp, cls, ...) tells the engine. Tasks implement this; the engine calls it."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch


class Task(Protocol):
    name: str
    #: metric name -> True when greater is better; the first key is the default for picking the best model
    metrics: dict[str, bool]

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Training batch from examples; all randomness from `rng` (seeded by the batch position)."""

    def eval_collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Evaluation batch; `rng` is seeded by the batch index, so two evaluations agree."""

    def count_targets(self, batch: dict[str, torch.Tensor]) -> int:
        """Number of loss terms in the batch (tokens predicted, or examples): the loss is normalised by
        their total over the whole accumulation window and all ranks."""

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The SUM of the loss over the batch's targets (not the mean)."""

    def eval_step(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Per-batch accumulators: numbers (summed) or 1-D arrays (concatenated) keyed by name."""

    def compute_metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        """Metrics from the accumulators of all batches and ranks."""
