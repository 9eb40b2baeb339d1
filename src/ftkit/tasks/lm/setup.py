"""The set-up the language-model tasks (clm, mlm, mlm+nsp) share: a model built from the recipe, the
items from a cache that the main process fills first, a stream when data.streaming, and their evaluation."""

from __future__ import annotations

from typing import Callable

from ftkit.data import lm_blocks
from ftkit.engine.loop import check_metric
from ftkit.models.build import build_model
from ftkit.task_entry import TaskEntry
from ftkit.tasks.spec import EvalRequest, EvalSetup, Prepared, sample_positions

# (recipe, tokenizer, log, want_train) -> (train items or None, validation items or None)
Items = Callable[..., tuple]


def prepare(recipe, tokenizer, accelerator, log, task, entry: TaskEntry, items: Items, stream_recipe=None,
            unit: str = "blocks of") -> Prepared:
    check_metric(recipe.train, task)  # before minutes of tokenizing
    with accelerator.main_process_first():  # the main process tokenizes and caches, the others read the cache
        train_items, val_items = items(recipe, tokenizer, log, True)
    if recipe.data.streaming:
        train_items = lm_blocks.streamed_blocks(stream_recipe or recipe, tokenizer, accelerator.process_index,
                                                accelerator.num_processes)
    model = build_model(recipe, tokenizer, entry)
    return Prepared(model, task, train_items, val_items, tokenizer, block_tokens=recipe.data.block_size,
                    eval_seed=recipe.masking.eval_seed, stream=recipe.data.streaming,
                    unit=f"{unit} {recipe.data.block_size} tokens")


def evaluation(req: EvalRequest, task, items: Items) -> EvalSetup:
    """On a file (`--data`, read as the recipe's training data) or the recipe's held-out data; masks and
    pairings are fixed by masking.eval_seed, so two evaluations of one model agree."""
    task.check_model(req.model)
    from_file = req.data is not None or req.split == "train"
    train, val = items(req.recipe, req.preprocessor, req.log, from_file)
    chosen = train if from_file else val
    pick = sample_positions(len(chosen), req.sample)
    return EvalSetup(task, chosen if pick is None else [chosen[int(i)] for i in pick], req.recipe.masking.eval_seed)


def tokenizer_key(recipe) -> str:
    """Where a tokenizer problem is to be fixed."""
    return "tokenizer.path" if recipe.tokenizer is not None else "model.from_pretrained"
