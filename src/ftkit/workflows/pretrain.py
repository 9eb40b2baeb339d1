"""`ftkit pretrain`: build a model from a config and pre-train it (clm; mlm and mlm+nsp plug in the same way)."""

from __future__ import annotations

from pathlib import Path

from ftkit.data import lm_blocks
from ftkit.engine import rundir
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import EpochBatches, StreamBatches, eval_batches, log_sample
from ftkit.engine.loop import check_metric, total_steps, train
from ftkit.errors import UserError
from ftkit.models.build import build_model, count_parameters
from ftkit.models.strategy import apply_strategy, save_weights
from ftkit.recipe import dump_recipe
from ftkit.recipe.load import portable
from ftkit.recipe.schema import PRETRAIN_TASKS, Recipe
from ftkit.tasks.clm import CausalLM
from ftkit.workflows.preflight import check_checkpoint_fits, preflight, start_run
from ftkit.workflows.tokenize import obtain_tokenizer


def make_task(recipe: Recipe, tokenizer):
    if recipe.task == "clm":
        return CausalLM()
    where = "tokenizer.path" if recipe.tokenizer is not None else "model.from_pretrained"
    if recipe.task == "mlm":
        from ftkit.tasks.mlm import MaskedLM

        return MaskedLM(tokenizer, recipe.masking, where)
    if recipe.task == "mlm+nsp":
        from ftkit.tasks.nsp import MaskedLMWithNSP

        return MaskedLMWithNSP(tokenizer, recipe.masking, where)
    raise UserError(f"task: '{recipe.task}' is not a pre-training task here; expected one of {', '.join(PRETRAIN_TASKS)}")


def lm_data(recipe: Recipe, tokenizer, accelerator, log):
    """(training items or a stream, validation items): packed blocks (clm, mlm) or sentence pairs (mlm+nsp)."""
    from ftkit.data import masked_lm_data

    quiet_log = log if accelerator.is_main_process else _quiet
    with accelerator.main_process_first():  # the main process tokenizes and caches, the others read the cache
        if recipe.task == "mlm+nsp":
            return masked_lm_data.pair_items(recipe, tokenizer, quiet_log)
        if recipe.task == "mlm":  # blocks of block_size - 2: the collate adds [CLS] and [SEP]
            recipe = masked_lm_data.block_recipe(recipe)
        train_items, val_items = lm_blocks.cached_blocks(recipe, tokenizer, quiet_log)
    if recipe.data.streaming:
        train_items = lm_blocks.streamed_blocks(recipe, tokenizer, accelerator.process_index, accelerator.num_processes)
    return train_items, val_items


def save_final_fn(tokenizer, recipe: Recipe):
    def save(model, path: Path, state_dict=None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        save_weights(model, path, state_dict)  # adapters (finetune.strategy lora/prefix/prompt): PEFT format
        tokenizer.save_pretrained(str(path))
        (path / "recipe.yaml").write_text(dump_recipe(portable(recipe)))
    return save


def flops_per_token(model, block_size: int) -> float:
    """Training FLOPs per token: 6N + 12*L*H*Q*T (PaLM / nanoGPT), N without position embeddings."""
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "position" not in name and "wpe" not in name)
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 1)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0)
    return 6 * n + 12 * layers * heads * (hidden // max(heads, 1)) * block_size


def activation_bytes(model, recipe: Recipe) -> float:
    """Activation memory of one micro-batch: L * (34*s*b*h + 5*a*s^2*b) bytes at 16-bit (Korthikanti et al. 2022)."""
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 1)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0)
    s, b = recipe.data.block_size, recipe.train.batch_size
    per_layer = 34 * s * b * hidden + 5 * heads * s * s * b
    return layers * per_layer * (1 if recipe.train.precision in ("auto", "bf16", "fp16") else 2)


def run(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print, on_step=None, customize=None) -> dict:
    """`customize(model, task, log) -> (model, task)`: e.g. distillation swaps in a student and its task."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    acc = make_accelerator(recipe.train.precision, recipe.output_dir, recipe.train.seed, recipe.train.threads)
    main_log = log if acc.is_main_process else _quiet
    preflight(recipe, resume, overwrite)  # before any work; output_dir is created once all checks pass
    out = Path(recipe.output_dir)
    with acc.main_process_first():
        tokenizer = obtain_tokenizer(recipe, main_log)
    task = make_task(recipe, tokenizer)
    check_metric(recipe.train, task)
    train_items, val_items = lm_data(recipe, tokenizer, acc, main_log)
    model = build_model(recipe, tokenizer)
    # fine-tuning an existing causal LM = model.from_pretrained + finetune.strategy (full, freeze, lora, prefix, prompt)
    model = apply_strategy(model, recipe.finetune, recipe.task, main_log)
    if customize is not None:
        model, task = customize(model, task, main_log)
    if resume:
        check_checkpoint_fits(recipe.output_dir, model)
    if hasattr(task, "check_model"):
        task.check_model(model)
    trainable, total = count_parameters(model)
    cfg = recipe.train
    main_log(f"{recipe.task} | {type(model).__name__} {total / 1e6:.2f}M parameters | "
             f"~{16 * trainable / 2**20:,.0f} MiB weights+grads+AdamW, "
             f"~{activation_bytes(model, recipe) / 2**20:,.0f} MiB activations per process (estimate) | {acc.num_processes} process(es), "
             f"{acc.device}, precision {'fp32' if acc.mixed_precision == 'no' else acc.mixed_precision}")
    rank, world = acc.process_index, acc.num_processes
    if recipe.data.streaming:
        batches = StreamBatches(train_items, cfg.batch_size, task.collate, cfg.seed, rank)
    else:
        batches = EpochBatches(train_items, cfg.batch_size, task.collate, cfg.seed, rank, world)
        unit = "sentence-pair examples of at most" if recipe.task == "mlm+nsp" else "blocks of"
        main_log(f"train: {len(train_items):,} {unit} {recipe.data.block_size} tokens, "
                 f"{batches.batches_per_epoch:,} batches per epoch per process")
    eval_fn, eval_note = None, None
    if val_items is not None:
        ebs = cfg.eval_batch_size or cfg.batch_size
        # masking.eval_seed, as `ftkit eval`: the masks (and NSP pairs) of validation match a later evaluation
        val_batches = eval_batches(val_items, ebs, task.eval_collate, recipe.masking.eval_seed, rank, world,
                                   cfg.eval_batches)
        eval_fn = lambda: val_batches  # noqa: E731
        eval_note = log_sample(val_batches.sample, "train.eval_batches", main_log)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * world * recipe.data.block_size
    start_run(acc, recipe, resume, overwrite, log, steps=total_steps(cfg, batches.batches_per_epoch, tokens_per_step))
    summary = train(accelerator=acc, model=model, task=task, train_batches=batches, eval_fn=eval_fn, cfg=cfg, out=out,
                    save_final=save_final_fn(tokenizer, recipe), resume=resume, tokens_per_step=tokens_per_step, log=main_log,
                    on_step=on_step)
    if acc.is_main_process:
        fpt = flops_per_token(model, recipe.data.block_size)
        summary.update(parameters=total, flops_per_token=fpt, **({"eval_sample": eval_note} if eval_note else {}),
                       achieved_gflops=round(summary["tokens_per_s"] * fpt / 1e9, 2))
        rundir.write_json_atomic(out / "metrics.json", summary)
        rundir.write_status(out, "finished", step=summary["steps"])
        best = summary.get("best")
        main_log(f"done in {summary['train_runtime_s']:.1f}s: {summary['tokens']:,} tokens, "
                 f"{summary['tokens_per_s']:,.0f} tokens/s, {summary['achieved_gflops']} GFLOP/s"
                 + (f", best validation {summary['metric_for_best']} {best:.4f} at step {summary['best_step']}" if best is not None else "")
                 + f"; model saved to {out}")
    return summary


def _quiet(*_a, **_k) -> None:
    pass
