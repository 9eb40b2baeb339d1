"""`ftkit compress distill -r R`: train a smaller student on a teacher's soft targets (cls or clm).

The recipe is a fine-tuning (cls) or causal-LM (clm) recipe whose `model.from_pretrained` is the
teacher (a trained classifier for these classes, or a causal LM), plus a `distill` section: the student
(`student_layers` or `student_config`), `temperature` and `alpha`. The run is the usual one
(`ftkit finetune` / `ftkit pretrain` workflow, same output directory layout, --resume works); the
student replaces the model and tasks/distill.py replaces the loss. The output is the student, a plain
`save_pretrained` model.
"""

from __future__ import annotations

from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe


def check(recipe: Recipe) -> None:
    if recipe.task not in ("cls", "clm"):
        raise UserError(f"task: distillation is for cls and clm, not {recipe.task}")
    if recipe.model.from_pretrained is None:
        raise UserError("model.from_pretrained: distillation needs a teacher (a trained model directory)")
    if recipe.finetune.strategy != "full":
        raise UserError(f"finetune.strategy: {recipe.finetune.strategy} does not apply to distillation "
                        f"(the student trains fully); leave it at full")
    d = recipe.distill
    if (d.student_layers is None) == (not d.student_config):
        raise UserError("distill: set exactly one of distill.student_layers (bottom layers of the teacher) or "
                        "distill.student_config (a new model from the teacher's config with these overrides)")


def teacher_labels(recipe: Recipe):
    from transformers import AutoConfig

    from ftkit.models.build import check_model_path
    from ftkit.models.classifier import checkpoint_labels

    return checkpoint_labels(AutoConfig.from_pretrained(check_model_path(recipe.model.from_pretrained)))


def run(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print) -> dict:
    from ftkit.compress.student import make_student
    from ftkit.tasks.distill import Distillation

    check(recipe)
    known = teacher_labels(recipe) if recipe.task == "cls" else None
    if recipe.task == "cls" and known is None:
        raise UserError(f"model.from_pretrained: {recipe.model.from_pretrained} is not a classifier; "
                        f"fine-tune the teacher first (ftkit finetune --task cls)")

    def customize(teacher, task, task_log):
        if known is not None and set(known) != set(task.labels):
            raise UserError(f"model.from_pretrained: the teacher classifies {', '.join(known)}; the data has "
                            f"{', '.join(task.labels)}; distill on the data the teacher was trained for")
        student = make_student(teacher, recipe.distill, task_log)
        return student, Distillation(task, teacher, recipe.distill.temperature, recipe.distill.alpha)

    if recipe.task == "cls":
        from ftkit.workflows import finetune

        return finetune.run(recipe, resume=resume, overwrite=overwrite, log=log, customize=customize)
    from ftkit.workflows import pretrain

    return pretrain.run(recipe, resume=resume, overwrite=overwrite, log=log, customize=customize)
