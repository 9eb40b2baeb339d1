"""`ftkit eval`: metrics of a saved model on a file, or on the validation data of the recipe it was trained with.

One workflow for every task: the model's task (from `--task` or its config's architectures, through the
registry, resolved once) says how its evaluation data is read and which Task scores it (its family's evaluation); loading the
model (plain, PEFT adapter or int8), the batches and the engine's evaluator are the same for all.
Under `--num-processes N` (cli.py relaunches the command through Accelerate, as for training) each rank scores
every N-th batch and the engine gathers the accumulators in the global batch order, so the metrics are those of
1 process; the main rank alone logs, writes the task's files (`finish`) and returns the result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ftkit import registry
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import eval_batches, log_sample
from ftkit.engine.loop import evaluate
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.recipe import load_recipe, packaged, validate
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry
from ftkit.tasks.spec import EvalRequest, EvalSetup
from ftkit.wording import with_article
from ftkit.workflows.resolve import family


def saved_recipe(model_dir: str) -> Optional[Recipe]:
    path = Path(model_dir) / "recipe.yaml"
    return load_recipe(path) if path.is_file() else None


def eval_recipe(model_dir: str, task: str, data: Optional[str], block_size: Optional[int],
                data_overrides: Optional[dict] = None, generate: bool = False, recipe: Optional[str] = None) -> Recipe:
    """The recipe whose data settings describe the evaluation data (`data_overrides`: data.* keys, or SECTION.KEY
    keys of a family section, for a file laid out otherwise): the model's own, or `recipe` (e.g. a fine-tuning recipe, to evaluate its starting point)."""
    base = load_recipe(packaged.find(recipe)) if recipe else saved_recipe(model_dir)
    raw = base.model_dump() if base else {"output_dir": model_dir, "model": {"from_pretrained": model_dir},
                                          "data": {"train": data or ""}}
    raw["task"] = task
    raw["tokenizer"] = None
    raw["model"] = {"from_pretrained": model_dir}
    if data is not None:
        # another file: read in its own layout (header row, extension) unless the command line says otherwise
        raw["data"].update(train=data, validation=None, validation_split=0.0, streaming=False, column_names=None,
                           header="auto", format="auto", delimiter=None)
    elif base is None or (base.data.validation is None and base.data.validation_split == 0
                          and not (generate and base.sft.eval_data is not None)):
        raise UserError(f"--data: {model_dir} has no recipe with validation data; pass --data FILE")
    if block_size:
        raw["data"]["block_size"] = block_size
    for key, value in (data_overrides or {}).items():  # KEY: a data.* key; SECTION.KEY: a family section's (ner.tag_field)
        section, _, name = key.rpartition(".")
        target = raw.setdefault(section or "data", {})
        if not isinstance(target, dict):
            raise UserError(f"--data-option {key}={value}: {section} is not a recipe section")
        target[name] = value
    return validate(raw, source=f"{model_dir}/recipe.yaml")


def model_task(path: str, model_dir: str, task: Optional[str], recipe: Optional[str] = None) -> TaskEntry:
    """--task, else the task the model was trained for (its recipe: a chat model and a GPT share an architecture),
    else the one its architecture names."""
    if task is not None:
        return registry.entry(task)
    base = load_recipe(packaged.find(recipe)) if recipe else saved_recipe(model_dir)
    found = registry.infer(saved.load_config(path).architectures, base.task if base is not None else None)
    if found is None and base is not None:  # a config without architectures: the recipe says
        found = registry.entry(base.task)
    if found is None:
        raise UserError(f"--task: cannot tell the task of {model_dir} from its config; pass --task")
    return found


def setup(model_dir: str, path: str, task: TaskEntry, recipe: Recipe, data: Optional[str], model, preprocessor=None, log=print,
          split: str = "validation", plot: Optional[str] = None, sample: Optional[int] = None, generate: bool = False,
          generations: Optional[str] = None) -> EvalSetup:
    """The task's evaluation Task and items for a loaded model (also what compress measures on); the
    preprocessor (tokenizer, image processor) is the model's own unless given."""
    preprocessor = preprocessor or saved.load_preprocessor(path, task)
    if generate and not task.generates:
        raise UserError(f"--generate: {model_dir} is {with_article(task.name)} model; generation evaluation is for models that "
                        f"write text (tasks {', '.join(t.name for t in registry.TASKS if t.generates)})")
    return family(task).evaluation(EvalRequest(model_dir, path, recipe, data, model, preprocessor, log, split, plot,
                                                      sample, generate, generations))


def run(model_dir: str, data: Optional[str] = None, task: Optional[str] = None, batch_size: int = 8,
        block_size: Optional[int] = None, max_batches: Optional[int] = None, precision: str = "fp32", log=print,
        data_overrides: Optional[dict] = None, plot: Optional[str] = None, generate: bool = False,
        generations: Optional[str] = None, recipe: Optional[str] = None) -> Optional[dict]:
    """The result on the main process; None on the other ranks of a multi-process evaluation."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    acc = make_accelerator(precision)
    main = acc.is_main_process
    log = log if main else (lambda _message: None)
    path = saved.check_dir(model_dir, "--model")  # plain, PEFT adapter or int8 (models/saved.py)
    task = model_task(path, model_dir, task, recipe)
    settings = eval_recipe(model_dir, task.name, data, block_size, data_overrides, generate, recipe)
    model = saved.load_model(path, task, log=log)
    with acc.main_process_first():  # a token cache the data needs is written once, then read by the other ranks
        ev = setup(model_dir, path, task, settings, data, model, log=log, plot=plot, generate=generate, generations=generations)
    if generate:  # (a model held in bf16 instead of autocast measured 2x slower to generate on CPU: kept fp32)
        model = saved.for_generation(model)
    # evaluation only: on the device, with the precision's autocast, never wrapped for DDP (the ranks exchange
    # accumulators, not gradients; a wrapped model has no generate())
    model = acc.prepare_model(model, evaluation_mode=True)
    batches = eval_batches(ev.items, batch_size, ev.task.eval_collate, ev.seed, acc.process_index, acc.num_processes,
                           limit=max_batches)
    note = log_sample(batches.sample, "--max-batches", log)
    metrics = evaluate(acc, model, ev.task, batches, log)
    if not main:
        return None
    result = {"model": os.path.normpath(model_dir), "task": task.name, "data": data if data is not None else
              "validation data of its recipe", **ev.extras, **metrics, **({"eval_sample": note} if note else {})}
    if acc.num_processes > 1:
        result["processes"] = acc.num_processes
    if ev.finish is not None:
        ev.finish(result)
    return result


def render(result: dict) -> str:
    """`ftkit eval`'s table: the task's own report, else one metric per line."""
    own = family(registry.entry(result["task"])).render
    if own is not None:
        return own(result)
    width = max(len(k) for k in result)
    shown = (f"{v:,.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in result.values())
    return "\n".join(f"{k:<{width}}  {s}" for k, s in zip(result, shown))
