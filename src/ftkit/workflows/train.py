"""`ftkit pretrain` and `ftkit finetune` (and distillation, prune-then-fine-tune): one training workflow.

The recipe's task is resolved to its registry entry once; its family's prepare builds the model, the engine
Task and the items (tasks/<family>/); the rest is the same for every task: pre-flight checks, the preprocessor,
the fine-tuning strategy, batches (length-grouped where the task says so), the engine's loop, the
saved model and the summary. `ftkit pretrain` / `ftkit finetune` are the user's words for the two
families; `family=` checks that the task belongs to it.

Other workflows change one piece and pass it explicitly: `setup()` returns the Prepared run, they swap the
model or the task (a distillation student, a pruned model), and call `run(..., prepared=, accelerator=)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ftkit import registry
from ftkit.data.tokenizer_source import obtain_tokenizer
from ftkit.engine import rundir
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import EpochBatches, StreamBatches, eval_batches, log_sample
from ftkit.engine.loop import total_steps, train
from ftkit.engine.trackers import resolve as resolve_trackers
from ftkit.errors import UserError
from ftkit.models import card as model_card
from ftkit.models.anatomy import activation_bytes, flops_per_token, unwrap
from ftkit.models.build import count_parameters
from ftkit.models.fast_paths import use_fast_paths
from ftkit.models.strategy import apply_strategy, save_weights, store_frozen_in
from ftkit.recipe import dump_recipe
from ftkit.recipe.load import portable
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry
from ftkit.tasks.spec import Prepared, quiet
from ftkit.wording import per_second, rate, with_article
from ftkit.workflows.diagnose import diagnose
from ftkit.workflows.preflight import check_checkpoint_fits, preflight, start_run
from ftkit.workflows.resolve import family

_COMMAND = {registry.PRETRAIN: "ftkit pretrain", registry.FINETUNE: "ftkit finetune"}


def check_family(recipe: Recipe, family: Optional[str]) -> None:
    entry = registry.entry(recipe.task)
    if family is not None and entry.family != family:
        kind = "fine-tuning" if family == registry.FINETUNE else "pre-training"
        raise UserError(f"task: '{recipe.task}' is not {with_article(kind)} task; expected one of {', '.join(registry.names(family))} "
                        f"({recipe.task} runs with `{_COMMAND[entry.family]}`)")


def setup(recipe: Recipe, accelerator, resume: bool = False, overwrite: bool = False, log=print) -> Prepared:
    """Checks, preprocessor, the task's model / Task / items, and the fine-tuning strategy applied."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    preflight(recipe, resume, overwrite)  # before any work; output_dir is created once all checks pass
    task = registry.entry(recipe.task)  # resolved once: what follows is handed the entry and its family
    spec = family(task)
    tokenizer = None
    if task.preprocessor == "tokenizer":
        with accelerator.main_process_first():
            tokenizer = obtain_tokenizer(recipe, task, log, spec.corpus)
    prep = spec.prepare(recipe, tokenizer, accelerator, log)
    # an existing model (model.from_pretrained) trains under finetune.strategy: full, freeze, lora, prefix, prompt
    prep.model = apply_strategy(prep.model, recipe.finetune, task, log)
    # LoRA on a decoder under bf16: frozen weights in bf16 (measured on SmolLM2: 1.16x faster, half the weight
    # memory, same loss); encoders keep fp32 until measured.
    # (not under FSDP: it wants one dtype per flattened unit)
    if recipe.finetune.strategy == "lora" and accelerator.mixed_precision == "bf16" and task.decoder_only \
            and accelerator.distributed_type.name != "FSDP":
        import torch

        n = store_frozen_in(prep.model, torch.bfloat16)
        log(f"finetune.strategy lora under bf16: the {n / 1e6:.1f}M frozen weights are kept in bf16")
    if recipe.train.gradient_checkpointing:
        _checkpointing(prep.model, log)
    if recipe.train.compile:
        _compile_blocks(prep.model, log)
    return prep


def _compile_blocks(model, log) -> None:
    """torch.compile each repeated transformer block (regional compilation), not the whole model: one compiled graph
    serves every layer (compile time of one block, not of the model) and the parts around the blocks stay eager, so
    the fused loss's hook and chunk loop (tasks/lm/loss.py) cause no graph breaks. The blocks are the classes the
    model names as units that must not be split (`_no_split_modules`, transformers' own list per architecture)."""
    from collections import Counter

    base = unwrap(model)
    # every PreTrainedModel inside (ELECTRA's pair holds two) names its units; the repeated ones are the blocks
    names = {n for m in base.modules() for n in (getattr(m, "_no_split_modules", None) or [])}
    counts = Counter(type(m).__name__ for m in base.modules() if type(m).__name__ in names)
    blocks = [m for m in base.modules() if counts.get(type(m).__name__, 0) > 1]
    if not blocks:
        raise UserError(f"train.compile: {type(base).__name__} names no repeated blocks to compile (_no_split_modules)")
    for block in blocks:
        block.compile()
    kinds = ", ".join(f"{n} x {c}" for n, c in counts.items() if c > 1)
    log(f"train.compile: {len(blocks)} blocks compiled with torch.compile ({kinds}; the first steps include compiling)")


def _checkpointing(model, log) -> None:
    """Activations recomputed in backward (transformers' gradient checkpointing, non-reentrant: it works with
    frozen embeddings, as under LoRA, without making the inputs require grad)."""
    base = unwrap(model)
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise UserError(f"train.gradient_checkpointing: {type(base).__name__} does not support it")
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False
    log("train.gradient_checkpointing: activations recomputed in the backward pass")


def save_final_fn(preprocessor, recipe: Recipe):
    def save(model, path: Path, state_dict=None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        save_weights(model, path, state_dict)  # safetensors; adapters in PEFT format; heads map ids to names
        if preprocessor is not None:
            preprocessor.save_pretrained(str(path))
        (path / "recipe.yaml").write_text(dump_recipe(portable(recipe)))
    return save


def _batches(prep: Prepared, recipe: Recipe, rank: int, world: int):
    cfg = recipe.train
    if prep.stream:
        return StreamBatches(prep.train_items, cfg.batch_size, prep.task.collate, cfg.seed, rank)
    try:
        return EpochBatches(prep.train_items, cfg.batch_size, prep.task.collate, cfg.seed, rank, world, order=prep.order)
    except ValueError as e:
        raise UserError(f"train.batch_size: {e}") from None


def run(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print, *, family: Optional[str] = None,
        accelerator=None, prepared: Optional[Prepared] = None, on_step=None) -> dict:
    check_family(recipe, family)
    acc = accelerator or make_accelerator(recipe.train.precision, recipe.output_dir, recipe.train.seed, recipe.train.threads,
                                          trackers=resolve_trackers(recipe.train.report_to))
    main_log = log if acc.is_main_process else quiet
    prep = prepared or setup(recipe, acc, resume, overwrite, main_log)
    model, task, cfg = prep.model, prep.task, recipe.train
    if cfg.max_tokens is not None and prep.block_tokens is None:
        raise UserError(f"train.max_tokens: not a budget for {recipe.task} (its examples have different lengths); "
                        f"use train.max_steps or train.epochs")
    if resume:
        check_checkpoint_fits(recipe.output_dir, model)
    task.check_model(model)
    for module in prep.frozen:  # contract: read, never trained (tasks/spec.Prepared.frozen)
        module.to(acc.device).eval().requires_grad_(False)
    if acc.device.type == "cpu" and cfg.fast_paths:  # dropout, attention and GELU faster on CPU (models/fast_paths.py)
        use_fast_paths(model)
    trainable, total = count_parameters(model)
    main_log(f"{recipe.task} | {type(model).__name__} {total / 1e6:.2f}M parameters | "
             f"~{16 * trainable / 2**20:,.0f} MiB weights+grads+AdamW, ~{activation_bytes(model.config, prep.seq_len or recipe.data.block_size, cfg.batch_size, acc.mixed_precision != 'no') / 2**20:,.0f} "
             f"MiB activations per process (estimate) | {acc.num_processes} process(es), {acc.device}, "
             f"precision {'fp32' if acc.mixed_precision == 'no' else acc.mixed_precision}")
    rank, world = acc.process_index, acc.num_processes
    batches = _batches(prep, recipe, rank, world)
    if not prep.stream:
        main_log(f"train: {len(prep.train_items):,} {prep.unit}, {batches.batches_per_epoch:,} batches of "
                 f"{cfg.batch_size} per epoch per process")
    eval_fn, eval_note = None, None
    if prep.val_items is not None:
        val_batches = eval_batches(prep.val_items, cfg.eval_batch_size or cfg.batch_size, task.eval_collate, prep.eval_seed,
                                   rank, world, cfg.eval_batches)
        eval_fn = lambda: val_batches  # noqa: E731 (one instance serves every evaluation)
        eval_note = log_sample(val_batches.sample, "train.eval_batches", main_log)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * world * prep.block_tokens if prep.block_tokens else None
    out = Path(recipe.output_dir)
    start_run(acc, recipe, resume, overwrite, log, steps=total_steps(cfg, batches.batches_per_epoch, tokens_per_step))
    summary = train(accelerator=acc, model=model, task=task, train_batches=batches, eval_fn=eval_fn, cfg=cfg, out=out,
                    save_final=save_final_fn(prep.preprocessor, recipe), resume=resume, tokens_per_step=tokens_per_step,
                    log=main_log, on_step=on_step, hparams=portable(recipe).model_dump(mode="json"))
    if acc.is_main_process:
        if prep.report is not None:
            summary.update(prep.report(acc.unwrap_model(model), out))
        warning = diagnose(task, summary, recipe, out, prep.summary.get("vocabulary"))
        if warning:
            summary["nothing_learned"] = warning
        _finish(summary, prep, registry.entry(recipe.task), total, eval_note, out, main_log)
        if warning:  # after "done in ...": the last thing the user reads
            main_log(f"warning: {warning}")
    return summary


def _finish(summary: dict, prep: Prepared, task: TaskEntry, parameters: int, eval_note, out: Path, log) -> None:
    sized = not prep.stream
    summary.update(parameters=parameters, **prep.summary,
                   **({"train_examples": len(prep.train_items)} if sized else {}),
                   validation_examples=len(prep.val_items) if prep.val_items is not None else 0,
                   **({"eval_sample": eval_note} if eval_note else {}),
                   examples_per_s=per_second(summary["examples"], summary["train_runtime_s"]))
    if prep.block_tokens:
        fpt = flops_per_token(prep.model, prep.block_tokens)
        summary.update(flops_per_token=fpt, achieved_gflops=round(summary["tokens_per_s"] * fpt / 1e9, 2))
    rundir.write_json_atomic(out / "metrics.json", summary)
    model_card.write(out, task, log=log)  # from the files just written: recipe.yaml, metrics.json, the model's config
    rundir.write_status(out, "finished", step=summary["steps"])
    log(done_line(summary, out))


def done_line(summary: dict, out) -> str:
    """The run's last line: time, pace (tokens for token tasks, examples for the others), best, where it is."""
    if "achieved_gflops" in summary:
        pace = f": {summary['tokens']:,} tokens, {summary['tokens_per_s']:,.0f} tokens/s, {summary['achieved_gflops']} GFLOP/s"
    else:
        pace = f" ({summary['examples']:,} examples, {rate(summary['examples_per_s'], 'examples')})"
    best = summary.get("best")
    return (f"done in {summary['train_runtime_s']:.1f}s{pace}"
            + (f"; best validation {summary['metric_for_best']} {best:.4f} at step {summary['best_step']}" if best is not None else "")
            + f"; {summary.get('saved', 'model')} saved to {out}")
