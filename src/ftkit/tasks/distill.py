"""Knowledge distillation (Hinton et al. 2015) as a task: the student learns the teacher's soft targets.

Wraps the student's own task (any whose registry entry says `compress`, i.e. whose Task gives
`logits_and_targets`: cls, clm): batches, target counts, evaluation and metrics are that
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
        self.base = base
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.name = base.name
        self.metrics = base.metrics
        self.keep_best = base.keep_best
        # everything but the loss is the base task's
        for name in ("collate", "eval_collate", "count_targets", "count_examples", "count_tokens", "eval_step",
                     "compute_metrics", "check_model", "logits_and_targets", "nothing_learned"):
            setattr(self, name, getattr(base, name))

    def loss(self, model, batch) -> torch.Tensor:
        student, labels = self.base.logits_and_targets(model, batch)
        device = student.device
        if next(self.teacher.parameters()).device != device:  # the engine placed the student and the batch, not the teacher
            self.teacher.to(device)
        with torch.no_grad():
            teacher, _ = self.base.logits_and_targets(self.teacher, batch)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), log_target=True,
                        reduction="sum") * (t * t)
        hard = F.cross_entropy(student, labels, reduction="sum")
        return self.alpha * soft + (1 - self.alpha) * hard
