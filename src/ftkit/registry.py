"""The task registry: every task ftkit knows, one entry each, listed from the family packages that declare them.

An entry (ftkit/task_entry.py) holds what the rest of ftkit may read without loading the task's code (the recipe
schema, `ftkit recipes`, the CLI's help all run before torch is imported): the name, the family (`ftkit pretrain` or
`ftkit finetune`), the Auto class and peft task type of its models, the architectures that mark a saved model as
this task's, its headline metric, what preprocessor it saves, which adapters it supports. Its behaviour (the Task
the engine trains, how its data and model are built, how it is evaluated and reported) is the `SPEC` of `module`
(a tasks/family.Family), loaded on first use by `family(entry)`.

Names become entries here and only here: `entry(name)` for a recipe's `task:` or `--task`, `infer` for a saved
model. The workflows call them once and pass the entry down; models/, data/ and the families never look a task up.

Adding a task family: write the package tasks/<family>/ (entry.py with its TaskEntry, the Family, data, predict),
a recipe and tests, and add its entry to TASKS below.
"""

from __future__ import annotations

import importlib
from typing import Optional

from ftkit.errors import UserError
from ftkit.task_entry import FINETUNE, PRETRAIN, TaskEntry  # noqa: F401 (re-exported: the CLI's help reads them here)
from ftkit.tasks.cls import entry as cls
from ftkit.tasks.encoders import entry as encoders
from ftkit.tasks.lm import entry as lm
from ftkit.tasks.ner import entry as ner
from ftkit.tasks.preference import entry as preference
from ftkit.tasks.qa import entry as qa
from ftkit.tasks.seq2seq import entry as seq2seq
from ftkit.tasks.sft import entry as sft
from ftkit.tasks.vision import entry as vision

# The one list of tasks, in the order `infer` breaks ties by (clm before sft: both are ...ForCausalLM; seq2seq before
# span-corruption: both are ...ForConditionalGeneration). Each package declares its own entries (torch-free).
TASKS: tuple[TaskEntry, ...] = (
    lm.CLM, encoders.MLM, encoders.ELECTRA, vision.MIM, encoders.MLM_NSP,
    cls.ENTRY, ner.ENTRY, sft.ENTRY, vision.IMAGE_CLS, qa.ENTRY, preference.ENTRY,
    seq2seq.SEQ2SEQ, seq2seq.SPAN_CORRUPTION,
)
NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
EXAMPLE_FORMATS: tuple[str, ...] = tuple(dict.fromkeys(f for t in TASKS for f in t.example_formats))
_BY_NAME = {t.name: t for t in TASKS}


def names(family: Optional[str] = None) -> tuple[str, ...]:
    return tuple(t.name for t in TASKS if family is None or t.family == family)


def entry(name: str) -> TaskEntry:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UserError(f"task: '{name}' is not a task of ftkit; expected one of {', '.join(NAMES)}") from None


def family(task: TaskEntry):
    """The task's behaviour (its module's `SPEC`, a tasks/family.Family whose `entry` is `task`), imported on first
    use: reading a recipe or the CLI's help never imports torch. (Typed by the workflows that call it: this module
    sits below tasks/.)"""
    return importlib.import_module(task.module).SPEC


def candidates(architectures) -> tuple[str, ...]:
    """Every task whose models have one of these architectures, the most specific suffix first (ElectraForPreTraining
    is electra's before it is mlm+nsp's ForPreTraining), ties in registry order: clm and sft share ForCausalLM."""
    found: dict[str, int] = {}
    for arch in architectures or []:
        for t in TASKS:
            length = max((len(s) for s in t.architectures if arch.endswith(s)), default=0)
            if length:
                found[t.name] = max(found.get(t.name, 0), length)
    order = {n: i for i, n in enumerate(NAMES)}
    return tuple(sorted(found, key=lambda n: (-found[n], order[n])))


def infer(architectures, trained_as: Optional[str] = None) -> Optional[TaskEntry]:
    """The task of a saved model: `trained_as` (the task of the recipe it was trained with) when its architecture
    fits it (an sft model is sft, though a GPT has the same architecture), else the most specific match of its
    config's `architectures` (e.g. BertForTokenClassification -> ner)."""
    found = candidates(architectures)
    if trained_as is not None and trained_as in found:
        return _BY_NAME[trained_as]
    return _BY_NAME[found[0]] if found else None
