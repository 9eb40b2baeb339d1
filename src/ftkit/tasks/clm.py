"""Causal language modelling (GPT): packed fixed-length blocks, next-token cross-entropy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.tasks.metrics import token_loss


class CausalLM:
    name = "clm"
    metrics = {"loss": False, "perplexity": False}

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.from_numpy(np.stack(examples).astype(np.int64))}

    eval_collate = collate

    def count_targets(self, batch) -> int:
        b, t = batch["input_ids"].shape
        return b * (t - 1)

    def loss(self, model, batch) -> torch.Tensor:
        ids = batch["input_ids"]
        logits = model(input_ids=ids).logits
        # Sum, not mean: the engine divides by the targets of the whole accumulation window.
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1),
                               reduction="sum")

    def eval_step(self, model, batch) -> dict:
        return {"loss_sum": self.loss(model, batch).item(), "count": self.count_targets(batch)}

    def compute_metrics(self, totals) -> dict[str, float]:
        m = token_loss(totals["loss_sum"], int(totals["count"]))
        return {"loss": m["loss"], "perplexity": m["perplexity"]}
