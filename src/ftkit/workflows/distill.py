"""`ftkit compress distill -r R`: train a smaller student on a teacher's soft targets (cls or clm).

The recipe is a fine-tuning (cls) or causal-LM (clm) recipe whose `model.from_pretrained` is the
teacher (a trained classifier for these classes, or a causal LM), plus a `distill` section: the student
(`student_layers` or `student_config`), `temperature` and `alpha`. The run is the usual one
(`ftkit finetune` / `ftkit pretrain` workflow, same output directory layout, --resume works); the
student replaces the model and tasks/distill.py replaces the loss. The output is the student, a plain
`save_pretrained` model.
"""

from __future__ import annotations

from ftkit import registry
from ftkit.compress.student import make_student
from ftkit.engine.accel import make_accelerator
from ftkit.engine.trackers import resolve as resolve_trackers
from ftkit.errors import UserError
from ftkit.models.build import check_model_path
from ftkit.recipe.schema import Recipe
from ftkit.tasks.distill import Distillation
from ftkit.tasks.spec import quiet
from ftkit.wording import with_article
from ftkit.workflows import train


def check(recipe: Recipe) -> None:
    if not registry.entry(recipe.task).compress:
        able = [t.name for t in registry.TASKS if t.compress]
        raise UserError(f"task: distillation is for {' and '.join(able)}, not {recipe.task}")
    if recipe.model.from_pretrained is None:
        raise UserError("model.from_pretrained: distillation needs a teacher (a trained model directory)")
    if recipe.finetune.strategy != "full":
        raise UserError(f"finetune.strategy: {recipe.finetune.strategy} does not apply to distillation "
                        f"(the student trains fully); leave it at full")
    d = recipe.distill
    if (d.student_layers is None) == (not d.student_config):
        raise UserError("distill: set exactly one of distill.student_layers (bottom layers of the teacher) or "
                        "distill.student_config (a new model from the teacher's config with these overrides)")


def check_teacher(recipe: Recipe):
    """The teacher must already be a model of the recipe's task (a classifier for cls, a causal LM for clm)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(check_model_path(recipe.model.from_pretrained))
    if recipe.task not in registry.candidates(config.architectures):
        entry = registry.entry(recipe.task)
        raise UserError(f"model.from_pretrained: {recipe.model.from_pretrained} is not {with_article(entry.help)} model ({recipe.task}); "
                        f"train the teacher first (ftkit {entry.family} --task {recipe.task})")
    return config


def run(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print) -> dict:
    """The recipe's training run (train.setup builds the teacher as its model), with the student and the
    distillation loss passed in explicitly."""
    check(recipe)
    config = check_teacher(recipe)  # as saved: building the model for the data could re-head it
    acc = make_accelerator(recipe.train.precision, recipe.output_dir, recipe.train.seed, recipe.train.threads,
                           trackers=resolve_trackers(recipe.train.report_to))
    main_log = log if acc.is_main_process else quiet
    prep = train.setup(recipe, acc, resume, overwrite, main_log)
    teacher, labels = prep.model, getattr(prep.task, "labels", None)
    known = [str(config.id2label[i]) for i in sorted(config.id2label)] if labels is not None else None
    if known is not None and set(known) != set(labels):
        raise UserError(f"model.from_pretrained: the teacher classifies {', '.join(known)}; the data has "
                        f"{', '.join(labels)}; distill on the data the teacher was trained for")
    prep.model = make_student(teacher, recipe.distill, main_log)
    prep.task = Distillation(prep.task, teacher, recipe.distill.temperature, recipe.distill.alpha)
    return train.run(recipe, resume=resume, overwrite=overwrite, log=log, accelerator=acc, prepared=prep)
