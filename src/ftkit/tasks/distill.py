"""Knowledge distillation (Hinton et al. 2015) as a task: the student learns the teacher's soft targets.

Wraps the student's own task (cls or clm): batches, target counts, evaluation and metrics are that
task's; only the training loss changes. Per target (an example for cls, a next-token position for clm):

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross-entropy(student, label)

summed over targets like every task's loss (the engine normalises). The teacher runs inside `loss`
under no_grad, in eval mode, on the batch the student sees; T^2 keeps the soft term's gradients on
the scale of the hard one when T changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Distillation:
    def __init__(self, base, teacher: torch.nn.Module, temperature: float = 2.0, alpha: float = 0.5):
        if base.name not in ("cls", "clm"):
            raise ValueError(f"distillation is for cls and clm, not {base.name}")
        self.base = base
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.name = base.name
        self.metrics = base.metrics
        self.keep_best = getattr(base, "keep_best", False)
        self.collate, self.eval_collate = base.collate, base.eval_collate
        self.count_targets, self.eval_step, self.compute_metrics = base.count_targets, base.eval_step, base.compute_metrics

    def _logits(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, hard labels), one row per target."""
        if self.name == "cls":
            return self.base.logits(model, batch).float(), batch["labels"]
        ids = batch["input_ids"]
        logits = model(input_ids=ids).logits[:, :-1]
        return logits.reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1)

    def loss(self, model, batch) -> torch.Tensor:
        student, labels = self._logits(model, batch)
        device = batch["input_ids"].device
        if next(self.teacher.parameters()).device != device:  # the engine placed the student and the batch, not the teacher
            self.teacher.to(device)
        with torch.no_grad():
            teacher, _ = self._logits(self.teacher, batch)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), log_target=True,
                        reduction="sum") * (t * t)
        hard = F.cross_entropy(student, labels, reduction="sum")
        return self.alpha * soft + (1 - self.alpha) * hard
