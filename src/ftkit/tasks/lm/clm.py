"""Causal language modelling (GPT): packed fixed-length blocks, next-token cross-entropy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data import lm_blocks
from ftkit.engine.task_api import TaskBase
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.lm import setup as lm_setup
from ftkit.tasks.lm.entry import CLM
from ftkit.tasks.lm.loss import HiddenStates, linear_cross_entropy
from ftkit.tasks.metrics import token_loss


class CausalLM(TaskBase):
    name = "clm"
    metrics = {"loss": False, "perplexity": False}

    def __init__(self, fused: bool = True):
        # fused: the output layer and the loss together (tasks/lm/loss.py) where the model type allows it
        self.hidden = HiddenStates() if fused else None

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.from_numpy(np.stack(examples).astype(np.int64))}

    def count_targets(self, batch) -> int:
        b, t = batch["input_ids"].shape
        return b * (t - 1)

    def logits_and_targets(self, model, batch):
        ids = batch["input_ids"]
        # the last positions: prompt tuning (peft) puts its virtual tokens in front of the input
        logits = model(input_ids=ids).logits[:, -ids.shape[1]:-1]
        return logits.reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1)

    def loss(self, model, batch) -> torch.Tensor:
        # Sum, not mean: the engine divides by the targets of the whole accumulation window.
        layer = self.hidden.attach(model) if self.hidden is not None else None
        if layer is None:
            return F.cross_entropy(*self.logits_and_targets(model, batch), reduction="sum")
        ids = batch["input_ids"]
        h, dtype = self.hidden(model, layer, input_ids=ids)
        h = h[:, -ids.shape[1]:-1]  # (as logits_and_targets)
        return linear_cross_entropy(h.reshape(-1, h.size(-1)), layer.weight, ids[:, 1:].reshape(-1), dtype=dtype)

    def eval_step(self, model, batch) -> dict:
        return {"loss_sum": self.loss(model, batch).item(), "count": self.count_targets(batch)}

    def compute_metrics(self, totals) -> dict[str, float]:
        m = token_loss(totals["loss_sum"], int(totals["count"]))
        return {"loss": m["loss"], "perplexity": m["perplexity"]}


def blocks(recipe, tokenizer, log, want_train: bool = True):
    return lm_blocks.cached_blocks(recipe, tokenizer, log)


SPEC = TaskSpec(CLM, prepare=lambda recipe, tokenizer, acc, log: lm_setup.prepare(recipe, tokenizer, acc, log, CausalLM(), CLM, blocks),
                evaluation=lambda req: lm_setup.evaluation(req, CausalLM(), blocks))
