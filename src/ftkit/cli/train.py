"""Commands that train: `tokenize`, `pretrain`, `finetune` (on one process or, through Accelerate, many) and
`compress distill`.

Each command imports its workflow (and ftkit's torch-side modules) when it runs, not here: `ftkit --help` and
recipe checks start without torch (tests/workflows/test_gpt_cli.py asserts it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ftkit import registry
from ftkit.cli.apps import (
    KeepEndOpt,
    OverridesArg,
    OverwriteOpt,
    PrintOpt,
    RecipeOpt,
    ResumeOpt,
    _keep,
    _offline_defaults,
    _recipe,
    app,
    compress_app,
    log,
    with_launch,
)
from ftkit.errors import UserError
from ftkit.launch import Launch
from ftkit.wording import with_article


@app.command()
def tokenize(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
             encode: bool = typer.Option(False, "--encode", help="Also tokenize the corpus into the packed cache that pretrain reuses."),
             overwrite: bool = typer.Option(False, "--overwrite", help="Move an existing tokenizer at tokenizer.path aside.")) -> None:
    """Train the recipe's tokenizer (bpe, wordpiece, unigram, char) and print its statistics."""
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import tokenize as wf

    wf.run(r, encode=encode, overwrite=overwrite, log=log)


@app.command(help=f"Pre-train a model as the recipe describes; its task is one of: "
                  f"{'; '.join(f'{t.name}: {t.help}' for t in registry.TASKS if t.family == registry.PRETRAIN)} "
                  "(every key: ftkit recipes docs).")
@with_launch
def pretrain(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg,
             task: Optional[str] = typer.Option(None, "--task", help=f"A pre-training task ({', '.join(registry.names(registry.PRETRAIN))}); must agree with the recipe's task, or sets it."),
             print_config: bool = PrintOpt, resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt,
             keep_at_end: Optional[int] = KeepEndOpt, *, launch: Launch) -> None:
    extra = _task_option(task, registry.PRETRAIN, recipe, overrides)
    r = _recipe(recipe, [*(overrides or []), *extra, *_keep(keep_at_end)], print_config)
    _offline_defaults()
    if launch.wanted:
        _launch(launch, r, resume, overwrite)
    from ftkit.workflows import train as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log, family=registry.PRETRAIN)


def _task_option(task: Optional[str], family: str, recipe: Path, overrides: Optional[List[str]]) -> list[str]:
    """`--task`: a task of the command's family that agrees with the recipe's (or sets it): the override it makes."""
    if task is None:
        return []
    from ftkit.recipe import load_recipe, packaged

    kind = "fine-tuning" if family == registry.FINETUNE else "pre-training"
    if task not in registry.names(family):
        raise UserError(f"--task: '{task}' is not {with_article(kind)} task; expected one of {', '.join(registry.names(family))}")
    first = load_recipe(packaged.find(str(recipe)), overrides or [])
    if "task" in first.model_fields_set and first.task != task:
        raise UserError(f"--task {task}: {recipe} is {with_article(repr(first.task))} recipe; drop --task or use {with_article(task)} recipe")
    return [f"task={task}"]


def _launch(launch, recipe, resume: bool, overwrite: bool) -> None:
    """Check what can be checked here (before any rank starts), then run this command on all ranks; exit with their code."""
    from ftkit.launch import relaunch
    from ftkit.workflows.preflight import preflight

    preflight(recipe, resume=resume, overwrite=overwrite, log=log)
    raise typer.Exit(relaunch(launch, sys.argv[1:], log=log))


@app.command(help="Fine-tune (or train from scratch) a model for a downstream task: "
                  f"{'; '.join(f'{t.name} = {t.help}' for t in registry.TASKS if t.family == registry.FINETUNE)}.")
@with_launch
def finetune(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg,
             task: Optional[str] = typer.Option(None, "--task", help=f"A fine-tuning task ({'; '.join(f'{t.name}: {t.help}' for t in registry.TASKS if t.family == registry.FINETUNE)}); must agree with the recipe's task, or sets it."),
             print_config: bool = PrintOpt, resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt,
             keep_at_end: Optional[int] = KeepEndOpt, *, launch: Launch) -> None:
    extra = _task_option(task, registry.FINETUNE, recipe, overrides)
    r = _recipe(recipe, [*(overrides or []), *extra, *_keep(keep_at_end)], print_config)
    _offline_defaults()
    if launch.wanted:
        _launch(launch, r, resume, overwrite)
    from ftkit.workflows import train as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log, family=registry.FINETUNE)


@compress_app.command("distill", help="Train a smaller student on the soft targets of the teacher in model.from_pretrained "
                      f"({' or '.join(t.name for t in registry.TASKS if t.compress)}; see the distill section).")
def compress_distill(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
                     resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt) -> None:
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import distill as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log)


