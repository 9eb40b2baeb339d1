"""Where the workflows turn what the user named into the task's entry, once, to pass down (nothing below asks).

A recipe's `task:` goes through `registry.entry`; a saved model is a model of the task it was trained for (its
recipe.yaml) when its architecture fits that task, else of the task its config's architectures name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ftkit import registry
from ftkit.models import saved
from ftkit.task_entry import TaskEntry
from ftkit.tasks.family import Family


def task_of_saved(path: str, key: str = "--model") -> Optional[TaskEntry]:
    """The task of the model saved in `path`; None for an architecture of no task."""
    return registry.infer(saved.load_config(path, key).architectures, saved.trained_as(path))


def family(task: TaskEntry) -> Family:
    """The task's Family (its prepare, evaluation, render, predict), loaded on first use."""
    found = registry.family(task)
    assert found.entry is task, f"{task.module}.SPEC is the family of {found.entry.name}, not of {task.name}"
    return found


def recorded_task(model_dir) -> Optional[TaskEntry]:
    """The task a model directory's own files name (its recipe.yaml, else its metrics.json), if ftkit knows it: what its
    model card describes (a directory ftkit did not train: None, a card for "a transformers model")."""
    name = saved.trained_as(str(model_dir))
    if name is None:
        metrics = Path(model_dir) / "metrics.json"
        try:
            name = json.loads(metrics.read_text()).get("task") if metrics.is_file() else None
        except (ValueError, OSError, AttributeError):
            name = None
    return registry.entry(name) if name in registry.NAMES else None
