"""The student of a distillation: the teacher cut to its bottom layers, or a new model from its config.

- `distill.student_layers: N` or `[i, j, ...]`: a copy of the teacher keeping its embeddings, its bottom N
  transformer layers (or the listed ones, as DistilBERT's every other layer) and its head: the student
  starts close to the teacher;
- `distill.student_config: {...}`: the teacher's config with these overrides, randomly initialised
  (any smaller shape: fewer layers, a narrower hidden size, ...).
A student must be smaller than its teacher (fewer layers, or fewer parameters).
"""

from __future__ import annotations

import copy

from ftkit.errors import UserError
from ftkit.models import anatomy
from ftkit.models.build import count_parameters
from ftkit.recipe.schema import DistillSection


def kept_layers(teacher, layers):
    """A copy of the teacher with only `layers` of its transformer stack: an int N keeps the bottom N, a list
    keeps those indices (0-based, strictly increasing)."""
    import torch

    have = anatomy.layer_count(teacher.config)
    if have is None:
        raise UserError(f"distill.student_layers: cannot tell how many layers {type(teacher).__name__} has")
    keep = list(range(layers)) if isinstance(layers, int) else list(layers)
    if isinstance(layers, list) and (not keep or any(b <= a for a, b in zip(keep, keep[1:])) or keep[-1] >= have):
        raise UserError(f"distill.student_layers: {layers} is not a strictly increasing list of layer indices of a "
                        f"{have}-layer teacher; expected numbers from 0 to {have - 1}, e.g. [0, {have - 1}]")
    if len(keep) >= have:
        raise UserError(f"distill.student_layers: a student of {len(keep)} layers is not smaller than its teacher of "
                        f"{have}; expected 1 to {have - 1}")
    student = copy.deepcopy(teacher)
    parent, attr, stack = anatomy.layer_stack(student)
    setattr(parent, attr, torch.nn.ModuleList([stack[i] for i in keep]))
    student.config.num_hidden_layers = len(keep)  # attribute_map: GPT-2's n_layer too
    if hasattr(student.config, "layer_types") and isinstance(student.config.layer_types, list):
        student.config.layer_types = [student.config.layer_types[i] for i in keep]
    for i, layer in enumerate(getattr(parent, attr)):  # attention modules that know their index (KV caches) keep counting from 0
        for m in layer.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = i
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
    student = (kept_layers(teacher, cfg.student_layers) if cfg.student_layers is not None
               else from_config(teacher, cfg.student_config))
    _, n_teacher = count_parameters(teacher)
    _, n_student = count_parameters(student)
    if n_student > n_teacher:
        raise UserError(f"distill.student_config: the student ({n_student:,} parameters) is larger than its teacher "
                        f"({n_teacher:,}); expected a smaller model")
    for p in student.parameters():
        p.requires_grad_(True)
    n = cfg.student_layers
    how = (f"new, from {cfg.student_config}" if n is None
           else f"the teacher's bottom {n} layers" if isinstance(n, int) else f"the teacher's layers {n}")
    log(f"distill: student {type(student).__name__} {n_student / 1e6:.2f}M parameters ({how}), teacher {n_teacher / 1e6:.2f}M; "
        f"temperature {cfg.temperature}, alpha {cfg.alpha}")
    return student
