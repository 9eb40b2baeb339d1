"""The student of a distillation: the teacher cut to its bottom layers, or a new model from its config.

- `distill.student_layers: N`: a copy of the teacher keeping its embeddings, its bottom N transformer
  layers and its head (the usual DistilBERT-style start: the student starts close to the teacher);
- `distill.student_config: {...}`: the teacher's config with these overrides, randomly initialised
  (any smaller shape: fewer layers, a narrower hidden size, ...).
A student must be smaller than its teacher (fewer layers, or fewer parameters).
"""

from __future__ import annotations

import copy

from ftkit.errors import UserError
from ftkit.models import anatomy
from ftkit.models.strategy import count_parameters
from ftkit.recipe.schema import DistillSection


def bottom_layers(teacher, n: int):
    key = anatomy.layer_count_key(teacher.config)
    have = getattr(teacher.config, key) if key else None
    if have is None:
        raise UserError(f"distill.student_layers: cannot tell how many layers {type(teacher).__name__} has")
    if n >= have:
        raise UserError(f"distill.student_layers: a student of {n} layers is not smaller than its teacher of {have}; "
                        f"expected 1 to {have - 1}")
    student = copy.deepcopy(teacher)
    parent, attr, stack = anatomy.layer_stack(student)
    import torch

    setattr(parent, attr, torch.nn.ModuleList(list(stack)[:n]))
    setattr(student.config, key, n)
    if hasattr(student.config, "layer_types") and isinstance(student.config.layer_types, list):
        student.config.layer_types = student.config.layer_types[:n]
    return student


def from_config(teacher, overrides: dict):
    cfg = copy.deepcopy(teacher.config)
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise UserError(f"distill.student_config.{k}: not a setting of {type(cfg).__name__}")
        setattr(cfg, k, v)
    try:
        return type(teacher)(cfg)
    except (ValueError, AssertionError) as e:
        raise UserError(f"distill.student_config: {str(e).splitlines()[0][:200]}") from None


def make_student(teacher, cfg: DistillSection, log=print):
    if (cfg.student_layers is None) == (not cfg.student_config):
        raise UserError("distill: set exactly one of distill.student_layers (bottom layers of the teacher) or "
                        "distill.student_config (a new model from the teacher's config with these overrides)")
    student = bottom_layers(teacher, cfg.student_layers) if cfg.student_layers else from_config(teacher, cfg.student_config)
    _, n_teacher = count_parameters(teacher)
    _, n_student = count_parameters(student)
    if n_student > n_teacher:
        raise UserError(f"distill.student_config: the student ({n_student:,} parameters) is larger than its teacher "
                        f"({n_teacher:,}); expected a smaller model")
    for p in student.parameters():
        p.requires_grad_(True)
    how = f"the teacher's bottom {cfg.student_layers} layers" if cfg.student_layers else f"new, from {cfg.student_config}"
    log(f"distill: student {type(student).__name__} {n_student / 1e6:.2f}M parameters ({how}), teacher {n_teacher / 1e6:.2f}M; "
        f"temperature {cfg.temperature}, alpha {cfg.alpha}")
    return student
