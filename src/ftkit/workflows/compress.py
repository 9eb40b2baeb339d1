"""`ftkit compress quantize | prune`: compress a saved model and report what it costs and gains.

Both measure the model before and after in the same process, on the same batches: the task's headline
metric (registry: accuracy for cls, perplexity for clm), latency per batch on this CPU (fp32), size on disk. `prune` can fine-tune the pruned model
briefly (`--finetune-steps N`, with the training data and settings of the model's recipe); the pruned
weights stay exactly zero during it (their gradients are masked). Each output directory gets a
`compression.json` with the report. (`ftkit compress distill` is workflows/distill.py.)
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Optional

from ftkit import registry
from ftkit.compress import prune as p
from ftkit.compress.prune import keep_pruned
from ftkit.engine import rundir
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import eval_batches, log_sample
from ftkit.engine.loop import evaluate
from ftkit.engine.trackers import resolve as resolve_trackers
from ftkit.errors import UserError
from ftkit.models import card, saved
from ftkit.models import int8 as q
from ftkit.models.build import auto_class, load_saved
from ftkit.recipe import load_recipe
from ftkit.task_entry import TaskEntry
from ftkit.wording import with_article
from ftkit.workflows import evaluate as evaluation
from ftkit.workflows import train
from ftkit.workflows.resolve import task_of_saved

REPORT = "compression.json"


@dataclasses.dataclass
class Bench:
    """What a compressed model is measured on: the task, its evaluation batches, the recipe and tokenizer; and
    the fp32 model they were built for (the one to compress)."""
    entry: TaskEntry  # the model's task
    task: object  # its evaluation Task
    batches: list
    recipe: object
    tokenizer: object
    model_dir: str
    path: str
    model: object
    accelerator: object  # one per command: measuring is fp32 (autocast off), a fine-tune runs at the recipe's precision
    log: object = None  # progress of long measurements (a line every 15 s off a terminal)


def source_model(model_dir: str, output: str, key: str = "--model") -> tuple[str, TaskEntry]:
    """(local path, task) of a plain saved model; the output must be new. Checked before any work."""
    path = saved.check_dir(model_dir, key)
    k = saved.kind(path)
    if k == "adapter":
        raise UserError(f"{key}: {model_dir} is a PEFT adapter; merge it into a plain model first "
                        f"(ftkit export --merge --model {model_dir} --output DIR; LoRA only)")
    if k == "int8":
        raise UserError(f"{key}: {model_dir} is already quantized (int8); compress the fp32 model instead")
    task = task_of_saved(path)
    if task is None or not task.compress:
        able = [t.name for t in registry.TASKS if t.compress]
        raise UserError(f"{key}: {model_dir} is {with_article(task.name if task else 'unknown')} model; compress works on {', '.join(able)} models")
    if Path(output).resolve() == Path(path).resolve():
        raise UserError(f"--output: {output} is the input model; expected a new directory")
    rundir.check(output, resume=False, overwrite=False)
    return path, task


def bench(model_dir: str, path: str, task: TaskEntry, data: Optional[str], batch_size: int, max_batches: Optional[int],
          log, accelerator) -> Bench:
    """The evaluation `ftkit eval` would run (the task's own items), as a fixed list of batches."""
    from transformers import AutoTokenizer

    recipe = evaluation.eval_recipe(model_dir, task.name, data, None)
    model = load_saved(auto_class(task), path).eval()  # a plain model (source_model checked it)
    tokenizer = load_saved(AutoTokenizer, path)
    ev = evaluation.setup(model_dir, path, task, recipe, data, model, tokenizer, log)
    sampled = eval_batches(ev.items, batch_size, ev.task.eval_collate, ev.seed, limit=max_batches)
    log_sample(sampled.sample, "--max-batches", log)
    return Bench(task, ev.task, list(sampled), recipe, tokenizer, model_dir, path, model, accelerator, log)


def measure(model, b: Bench) -> dict:
    """Headline metric, loss and CPU latency per batch (after one warm-up batch), on the bench's batches, in fp32."""
    import torch

    model.eval()
    with torch.no_grad():
        b.task.eval_step(model, b.batches[0])  # warm-up: first-call allocations, kernel selection
    t0 = time.perf_counter()
    metrics = evaluate(b.accelerator, model, b.task, b.batches, b.log, mixed_precision=False)
    elapsed = time.perf_counter() - t0
    name = b.entry.headline
    return {name: metrics[name], "loss": metrics["loss"], "latency_ms_per_batch": round(1000 * elapsed / len(b.batches), 2),
            "batches": len(b.batches), "batch_size": b.task.count_examples(b.batches[0])}


def copy_side_files(src: str, dst: Path, tokenizer) -> None:
    tokenizer.save_pretrained(str(dst))
    if Path(src, "recipe.yaml").is_file():
        shutil.copyfile(Path(src, "recipe.yaml"), dst / "recipe.yaml")


def quantize(model_dir: str, output: str, data: Optional[str] = None, batch_size: int = 32,
             max_batches: Optional[int] = None, log=print) -> dict:
    import torch

    path, task = source_model(model_dir, output)
    q.check_backend()
    b = bench(model_dir, path, task, data, batch_size, max_batches, log, make_accelerator("fp32"))
    model = b.model
    log(f"quantize: {model_dir} ({task.name}), {len(b.batches)} batches of {batch_size}, {torch.get_num_threads()} threads, "
        f"backend {torch.backends.quantized.engine}")
    before = measure(model, b)
    linear_before = q.linear_weight_bytes(model)
    qmodel, converted = q.quantize(model)
    after = measure(qmodel, b)
    out = Path(output)
    q.save_quantized(qmodel, out, task.name, converted)
    copy_side_files(path, out, b.tokenizer)
    reloaded = measure(saved.load_model(str(out), task), b)  # what `ftkit eval` / `predict` will see
    report = {"method": "dynamic int8 (per-channel, symmetric) of every Linear layer", "model": model_dir, "output": output,
              "task": task.name, "before": before, "after": after, "after_reload": reloaded,
              "size_on_disk_bytes": {"before": saved.weights_bytes(path), "after": saved.weights_bytes(str(out))},
              "linear_weight_bytes": {"before": linear_before, "after": q.linear_weight_bytes(qmodel)},
              "quantized_layers": len(q.quantized_modules(qmodel)), "threads": torch.get_num_threads()}
    report["linear_weight_ratio"] = round(linear_before / max(report["linear_weight_bytes"]["after"], 1), 2)
    report["speedup"] = round(before["latency_ms_per_batch"] / max(after["latency_ms_per_batch"], 1e-9), 2)
    rundir.write_json_atomic(out / REPORT, report)
    card.write(out, task, origin=f"`{model_dir}` with every Linear layer quantized to dynamic int8 (`ftkit compress quantize`; "
                           f"measurements in {REPORT})", log=log,
               usage=f"Stored in ftkit's int8 format (`model.int8.safetensors` + `quantization.json`; transformers alone "
                     f"does not read it): `ftkit eval --model {out}`, `ftkit predict --model {out} FILE`, or in Python "
                     f"`from ftkit import registry; from ftkit.models import saved; "
                     f"model = saved.load_model(\"{out}\", registry.entry(\"{task.name}\"))`.")
    return report


def importance_batches(b: Bench, n: int, batch_size: int, log) -> list:
    """`n` batches of training data (not the evaluation data the result is reported on), a seeded sample."""
    recipe = evaluation.saved_recipe(b.model_dir) or b.recipe  # the training data of the model's recipe, not --data
    ev = evaluation.setup(b.model_dir, b.path, b.entry, recipe.model_copy(update={"tokenizer": None}), None, b.model,
                          b.tokenizer, log, split="train", sample=n * batch_size)
    return list(eval_batches(ev.items, batch_size, b.task.eval_collate, 0, limit=n))


def prune(model_dir: str, output: str, sparsity: float = 0.0, scope: str = "global", heads: Optional[float] = None,
          finetune_steps: int = 0, lr: Optional[float] = None, data: Optional[str] = None, batch_size: int = 32,
          max_batches: Optional[int] = None, importance_batches_n: int = 8, log=print) -> dict:
    p.check_sparsity(sparsity)
    if heads is not None and not 0.0 < heads < 1.0:
        raise UserError(f"--heads: {heads} is outside (0, 1); expected the share of attention heads to remove, e.g. 0.25")
    if sparsity == 0 and heads is None:
        raise UserError("prune: nothing to do; give --sparsity S (unstructured) and/or --heads H (attention heads)")
    path, task = source_model(model_dir, output)
    if finetune_steps and not Path(path, "recipe.yaml").is_file():
        raise UserError(f"--finetune-steps: {model_dir} has no recipe.yaml to take the training data and settings from")
    recipe = _finetune_recipe(path, output, finetune_steps, lr) if finetune_steps else None
    # one accelerator for the command: measurements switch autocast off; the fine-tune runs at the recipe's precision
    acc = make_accelerator(recipe.train.precision if recipe else "fp32", output if recipe else None,
                           recipe.train.seed if recipe else 0, recipe.train.threads if recipe else None,
                           trackers=resolve_trackers(recipe.train.report_to) if recipe else None)
    b = bench(model_dir, path, task, data, batch_size, max_batches, log, acc)
    model = b.model
    before = measure(model, b)
    masks, chosen = {}, None
    if heads is not None:
        loss = b.task.loss
        imp = p.head_importance(model, importance_batches(b, importance_batches_n, batch_size, log), loss)
        chosen = p.choose_heads(imp, heads)
        masks = p.prune_heads(model, chosen)
        log(f"prune: removed {sum(map(len, chosen.values()))} of {imp.numel()} attention heads (Michel et al. importance): "
            + "; ".join(f"layer {k}: {v}" for k, v in chosen.items()))
    if sparsity > 0:
        masks = p.merge_masks(masks, p.magnitude_prune(model, sparsity, scope))
        log(f"prune: {scope} magnitude pruning to {sparsity:.0%} of the layers' weights")
    pruned = measure(model, b)
    out = Path(output)
    if finetune_steps:
        summary = _finetune_pruned(model, masks, recipe, acc, log)
    else:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out))
        copy_side_files(path, out, b.tokenizer)
        summary = None
    final = saved.load_model(str(out), task)  # reloaded from disk: what plain transformers / ftkit eval see
    report = {"method": {"sparsity": sparsity, "scope": scope if sparsity else None, "heads": heads,
                         "head_importance": "Michel et al. 2019 (|dL/dgate|, normalised per layer)" if heads else None,
                         "pruned_heads": chosen, "finetune_steps": finetune_steps},
              "model": model_dir, "output": output, "task": task.name, "before": before, "pruned": pruned,
              "after": measure(final, b), "sparsity": p.sparsity_report(final),
              "size_on_disk_bytes": {"before": saved.weights_bytes(path), "after": saved.weights_bytes(str(out))},
              "finetune": {k: summary[k] for k in ("steps", "train_runtime_s", "best") if k in summary} if summary else None}
    rundir.write_json_atomic(out / REPORT, report)
    how = ", ".join([f"sparsity {sparsity:.0%}"] * bool(sparsity) + [f"heads {heads}"] * bool(heads)
                    + [f"then fine-tuned {finetune_steps} steps"] * bool(finetune_steps))
    card.write(out, task, origin=f"`{model_dir}` pruned (`ftkit compress prune`: {how}; measurements in {REPORT})", log=log)
    return report


def _finetune_recipe(path: str, output: str, steps: int, lr: Optional[float]):
    """The model's recipe, turned into a short full fine-tune of the pruned model into `output`."""
    over = [f"output_dir={output}", "model.model_type=null", f"model.from_pretrained={path}", f"train.max_steps={steps}",
            "train.eval_every=0", "finetune.strategy=full", "train.early_stopping_patience=null"] + ([f"train.lr={lr}"] if lr else [])
    recipe = load_recipe(Path(path, "recipe.yaml"), over)
    return recipe.model_copy(update={"tokenizer": None})  # the model's own tokenizer


def _finetune_pruned(model, masks: dict, recipe, acc, log) -> dict:
    """A short fine-tune of the pruned model with its recipe's data and settings; pruned weights stay zero."""
    prep = train.setup(recipe, acc, log=log)  # the recipe's task, data and batches; the model is the pruned one
    keep_pruned(model, masks)
    model.train()
    prep.model = model
    return train.run(recipe, log=log, accelerator=acc, prepared=prep)


def size_mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MB"


def render(report: dict) -> str:
    """A short before / after table for the terminal."""
    name = registry.entry(report["task"]).headline
    rows = [("before", report["before"])] + ([("pruned", report["pruned"])] if "pruned" in report else []) + \
           [("after", report["after"])]
    lines = [f"{'':8} {name:>10} {'ms/batch':>9}"]
    lines += [f"{k:8} {v[name]:>10.4f} {v['latency_ms_per_batch']:>9.1f}" for k, v in rows]
    s = report["size_on_disk_bytes"]
    lines.append(f"size on disk: {size_mb(s['before'])} -> {size_mb(s['after'])}")
    if "linear_weight_bytes" in report:
        lw = report["linear_weight_bytes"]
        lines.append(f"Linear weights: {size_mb(lw['before'])} -> {size_mb(lw['after'])} ({report['linear_weight_ratio']}x smaller)")
    if "sparsity" in report:
        lines.append(f"sparsity: {report['sparsity']['layer_weight_sparsity']:.2%} of the layers' weights, "
                     f"{report['sparsity']['model_sparsity']:.2%} of all parameters")
    lines.append(f"report: {os.path.join(report['output'], REPORT)}")
    return "\n".join(lines)


__all__ = ["quantize", "prune", "render"]
