"""`ftkit finetune --task cls|ner`: fine-tune (or train from scratch) a text or token classifier as the recipe describes.

Each task prepares its model, Task and encoded items (`prepare_cls` here, `prepare_ner` in ner_setup.py);
the rest of the run is shared.


Data -> class names (from the training labels) -> a model whose head matches them -> tokenized
examples in length-grouped batches, padded per batch -> the engine's loop, which evaluates every
`train.eval_every` steps and/or every epoch (`train.eval_every_epoch`), keeps the best evaluation's
model (by `train.metric_for_best`, default accuracy) and stops early when asked.
The output directory is a plain `save_pretrained` model whose config maps ids to the class names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ftkit.data import labeled
from ftkit.engine import rundir
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import EpochBatches, eval_batches, log_sample
from ftkit.engine.loop import check_metric, total_steps, train
from ftkit.errors import UserError
from ftkit.models.classifier import build_classifier, input_names, max_positions
from ftkit.models.strategy import apply_strategy, save_weights
from ftkit.recipe import dump_recipe
from ftkit.recipe.load import portable
from ftkit.recipe.schema import FINETUNE_TASKS, Recipe
from ftkit.tasks.cls import SequenceClassification
from ftkit.workflows.preflight import check_checkpoint_fits, preflight, start_run
from ftkit.workflows.tokenize import obtain_tokenizer


def check_recipe(recipe: Recipe) -> None:
    if recipe.task not in FINETUNE_TASKS:
        raise UserError(f"task: '{recipe.task}' is not a fine-tuning task; expected one of {', '.join(FINETUNE_TASKS)} "
                        f"(pre-training tasks run with `ftkit pretrain`)")
    if recipe.train.max_tokens is not None:
        raise UserError("train.max_tokens: not a budget for cls (batches have different lengths); "
                        "use train.max_steps or train.epochs")


def length_cap(recipe: Recipe, model, log) -> int:
    """data.block_size, lowered to what the model's position embeddings allow."""
    limit = max_positions(model.config)
    if limit is not None and recipe.data.block_size > limit:
        log(f"data.block_size {recipe.data.block_size} is more than the model's {limit} positions: texts are cut at {limit}")
        return limit
    return recipe.data.block_size


def describe_split(name: str, rows: labeled.Rows, items: list[dict], cap: int) -> str:
    counts = Counter(rows.labels)
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    return (f"{name}: {len(items):,} examples ({shown}{', ...' if len(counts) > 8 else ''}); "
            f"{labeled.length_stats(items, cap)}" + (f"; {len(rows.skipped):,} empty skipped" if rows.skipped else ""))


def save_final_fn(tokenizer, recipe: Recipe):
    def save(model, path: Path, state_dict=None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        save_weights(model, path, state_dict)  # safetensors; config.json carries id2label / label2id (adapters: PEFT format)
        tokenizer.save_pretrained(str(path))
        (path / "recipe.yaml").write_text(dump_recipe(portable(recipe)))
    return save


def sorted_by_length(items: list[dict]) -> list[dict]:
    """Evaluation order: by length, so eval batches need almost no padding (metrics do not depend on order)."""
    return sorted(items, key=lambda it: len(it["input_ids"]))


@dataclass
class Prepared:
    """What a fine-tuning task hands the shared run: its model, Task, encoded items and summary extras."""
    model: Any
    task: Any
    train_items: list
    val_items: Optional[list]
    labels: list[str]
    summary: dict = field(default_factory=dict)
    tokenizer: Any = None  # when the task needs the tokenizer set up otherwise (ner: add_prefix_space)


def prepare_cls(recipe: Recipe, tokenizer, log) -> Prepared:
    train_rows, val_rows = labeled.train_and_validation(recipe.data, recipe.train.seed, log)
    labels = labeled.infer_labels(train_rows)
    if val_rows is not None:
        labeled.check_known(val_rows, labels, "data.train")
    model, labels = build_classifier(recipe, tokenizer, labels, log)
    label2id = {n: i for i, n in enumerate(labels)}
    task = SequenceClassification(tokenizer, labels)
    check_metric(recipe.train, task)  # a misspelt metric_for_best fails before the data is tokenized
    cap = length_cap(recipe, model, log)
    names = input_names(model, tokenizer)
    train_items = labeled.encode(train_rows, tokenizer, cap, label2id, names)
    val_items = sorted_by_length(labeled.encode(val_rows, tokenizer, cap, label2id, names)) if val_rows is not None else None
    log(describe_split("train", train_rows, train_items, cap))
    if val_rows is not None:
        log(describe_split("validation", val_rows, val_items, cap))
    log(f"cls | {len(labels)} classes | inputs {', '.join(names)}")
    return Prepared(model, task, train_items, val_items, labels, {"train_skipped_empty": len(train_rows.skipped)})


def _prepare(recipe: Recipe, tokenizer, log) -> Prepared:
    if recipe.task == "ner":
        from ftkit.workflows.ner_setup import prepare_ner

        return prepare_ner(recipe, tokenizer, log)
    return prepare_cls(recipe, tokenizer, log)


def run(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print, customize=None) -> dict:
    """`customize(model, task, log) -> (model, task)`: e.g. distillation swaps in a student and its task."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    check_recipe(recipe)
    acc = make_accelerator(recipe.train.precision, recipe.output_dir, recipe.train.seed, recipe.train.threads)
    main_log = log if acc.is_main_process else _quiet
    preflight(recipe, resume, overwrite)  # before any work; output_dir is created once all checks pass
    out = Path(recipe.output_dir)
    with acc.main_process_first():
        tokenizer = obtain_tokenizer(recipe, main_log)
    prep = _prepare(recipe, tokenizer, main_log)
    model, task, train_items, val_items, labels = prep.model, prep.task, prep.train_items, prep.val_items, prep.labels
    tokenizer = prep.tokenizer or tokenizer
    model = apply_strategy(model, recipe.finetune, recipe.task, main_log)
    if customize is not None:
        model, task = customize(model, task, main_log)
    if resume:
        check_checkpoint_fits(recipe.output_dir, model)
    cfg = recipe.train
    main_log(f"{acc.num_processes} process(es), {acc.device}, precision {acc.mixed_precision}")
    rank, world = acc.process_index, acc.num_processes
    lengths = np.array([len(it["input_ids"]) for it in train_items])
    try:
        batches = EpochBatches(train_items, cfg.batch_size, task.collate, cfg.seed, rank, world,
                               order=lambda rng: labeled.length_grouped_order(lengths, cfg.batch_size, rng))
    except ValueError as e:
        raise UserError(f"train.batch_size: {e}") from None
    main_log(f"train: {batches.batches_per_epoch:,} batches of {cfg.batch_size} per epoch per process, length-grouped")
    start_run(acc, recipe, resume, overwrite, log, steps=total_steps(cfg, batches.batches_per_epoch, None))
    eval_fn, eval_note = None, None
    if val_items is not None:
        ebs = cfg.eval_batch_size or cfg.batch_size
        val_batches = eval_batches(val_items, ebs, task.eval_collate, cfg.seed, rank, world, cfg.eval_batches)
        eval_fn = lambda: val_batches  # noqa: E731
        eval_note = log_sample(val_batches.sample, "train.eval_batches", main_log)
    summary = train(accelerator=acc, model=model, task=task, train_batches=batches, eval_fn=eval_fn, cfg=cfg, out=out,
                    save_final=save_final_fn(tokenizer, recipe), resume=resume, log=main_log)
    if acc.is_main_process:
        summary.update(labels=labels, train_examples=len(train_items), **prep.summary,
                       validation_examples=len(val_items) if val_items is not None else 0,
                       **({"eval_sample": eval_note} if eval_note else {}),
                       examples_per_s=round(summary["examples"] / max(summary["train_runtime_s"], 1e-9), 1))
        rundir.write_json_atomic(out / "metrics.json", summary)
        rundir.write_status(out, "finished", step=summary["steps"])
        best = summary.get("best")
        main_log(f"done in {summary['train_runtime_s']:.1f}s ({summary['examples']:,} examples, "
                 f"{summary['examples_per_s']:,.0f} examples/s)"
                 + (f"; best validation {summary['metric_for_best']} {best:.4f} at step {summary['best_step']}"
                    if best is not None else "")
                 + f"; {summary.get('saved', 'model')} saved to {out}")
    return summary


def _quiet(*_a, **_k) -> None:
    pass
