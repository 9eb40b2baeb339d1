"""`ftkit eval`: metrics of a saved model on a file, or on the validation data of the recipe it was trained with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ftkit.data import lm_blocks
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import eval_batches, log_sample
from ftkit.engine.loop import evaluate
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.build import load_saved
from ftkit.recipe import load_recipe
from ftkit.recipe.schema import Recipe

_ARCH_TASKS = (("ForPreTraining", "mlm+nsp"), ("ForMaskedLM", "mlm"), ("ForSequenceClassification", "cls"),
               ("ForTokenClassification", "ner"),
               ("ForCausalLM", "clm"), ("LMHeadModel", "clm"))


def infer_task(config) -> Optional[str]:
    for arch in config.architectures or []:
        for suffix, task in _ARCH_TASKS:
            if arch.endswith(suffix):
                return task
    return None


def saved_recipe(model_dir: str) -> Optional[Recipe]:
    path = Path(model_dir) / "recipe.yaml"
    return load_recipe(path) if path.is_file() else None


def eval_recipe(model_dir: str, task: str, data: Optional[str], block_size: Optional[int],
                data_overrides: Optional[dict] = None) -> Recipe:
    """The recipe whose data settings describe the evaluation data (`data_overrides`: data.* keys for a file laid out otherwise)."""
    from ftkit.recipe import validate

    base = saved_recipe(model_dir)
    raw = base.model_dump() if base else {"output_dir": model_dir, "model": {"from_pretrained": model_dir},
                                          "data": {"train": data or ""}}
    raw["task"] = task
    raw["tokenizer"] = None
    raw["model"] = {"from_pretrained": model_dir}
    if data is not None:
        # another file: read in its own layout (header row, extension) unless the command line says otherwise
        raw["data"].update(train=data, validation=None, validation_split=0.0, streaming=False, column_names=None,
                           header="auto", format="auto")
    elif base is None or (base.data.validation is None and base.data.validation_split == 0):
        raise UserError(f"--data: {model_dir} has no recipe with validation data; pass --data FILE")
    if block_size:
        raw["data"]["block_size"] = block_size
    raw["data"].update(data_overrides or {})
    return validate(raw, source=f"{model_dir}/recipe.yaml")


def make_task(task: str, tokenizer, recipe: Recipe):
    if task == "clm":
        from ftkit.tasks.clm import CausalLM

        return CausalLM()
    if task == "mlm":
        from ftkit.tasks.mlm import MaskedLM

        return MaskedLM(tokenizer, recipe.masking, "--model")
    if task == "mlm+nsp":
        from ftkit.tasks.nsp import MaskedLMWithNSP

        return MaskedLMWithNSP(tokenizer, recipe.masking, "--model")
    raise UserError(f"--task: evaluating '{task}' models is not supported yet")


def eval_items(task: str, recipe: Recipe, tokenizer, from_file: bool, log):
    from ftkit.data import masked_lm_data

    if task == "mlm+nsp":  # held-out sentence pairs; masks and pairings fixed by masking.eval_seed
        train, val = masked_lm_data.pair_items(recipe, tokenizer, log, want_train=from_file)
    elif task == "mlm":
        train, val = masked_lm_data.mlm_blocks(recipe, tokenizer, log)
    else:
        train, val = lm_blocks.cached_blocks(recipe, tokenizer, log)
    return train if from_file else val


def run(model_dir: str, data: Optional[str] = None, task: Optional[str] = None, batch_size: int = 8,
        block_size: Optional[int] = None, max_batches: Optional[int] = None, precision: str = "fp32", log=print,
        data_overrides: Optional[dict] = None, plot: Optional[str] = None) -> dict:
    from transformers import AutoTokenizer

    path = saved.check_dir(model_dir, "--model")  # plain, PEFT adapter or int8 (models/saved.py)
    config = saved.load_config(path)
    task = task or infer_task(config)
    if task is None:
        raise UserError(f"--task: cannot tell the task of {model_dir} from its config; pass --task")
    recipe = eval_recipe(model_dir, task, data, block_size, data_overrides)
    if task == "cls":  # its own report: per-class scores, confusion matrix (and its image)
        from ftkit.workflows import evaluate_cls

        return evaluate_cls.run(model_dir, path, recipe, data, batch_size, max_batches, precision, plot, log)
    if task == "ner":  # entity-level scores over words, per type
        from ftkit.workflows import evaluate_ner

        return evaluate_ner.run(model_dir, path, recipe, data, batch_size, max_batches, precision, log)
    tokenizer = load_saved(AutoTokenizer, path)
    model = saved.load_model(path, task, log=log)
    acc = make_accelerator(precision)
    model = acc.prepare(model)
    t = make_task(task, tokenizer, recipe)
    if hasattr(t, "check_model"):
        t.check_model(model)
    items = eval_items(task, recipe, tokenizer, data is not None, log)
    batches = eval_batches(items, batch_size, t.eval_collate, recipe.masking.eval_seed, limit=max_batches)
    note = log_sample(batches.sample, "--max-batches", log)
    metrics = evaluate(acc, model, t, batches, log)
    where = data if data is not None else "validation data of its recipe"
    return {"model": os.path.normpath(model_dir), "task": task, "data": where, **metrics,
            **({"eval_sample": note} if note else {})}

