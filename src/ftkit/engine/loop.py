"""The one training loop every task uses, on `accelerate.Accelerator`.

Read it top to bottom: set-up, optional resume, then per optimizer step: gather `grad_accum`
micro-batches, normalise the summed loss by the number of targets in the whole window (all
ranks), backward, clip, step; log, evaluate, checkpoint; finally save the model.
Not `transformers.Trainer`: the plain loop is faster here and gives exact control of resume
and of loss normalisation (k micro-batches of b give the gradient of one batch of k*b).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch

from ftkit.engine import rundir, trackers
from ftkit.engine.checkpoint_weights import CheckpointWeights
from ftkit.engine.metrics_log import MetricsLog
from ftkit.engine.optim import build_optimizer, build_scheduler
from ftkit.engine.progress import Progress as ProgressLine  # (loop.Progress is the training state)
from ftkit.engine.progress import eta_text
from ftkit.engine.task_api import Task
from ftkit.errors import UserError
from ftkit.recipe.schema import TrainSection
from ftkit.wording import rate


@dataclass
class Progress:
    step: int = 0
    tokens: int = 0
    examples: int = 0
    evals: int = 0
    best: Optional[float] = None
    best_step: Optional[int] = None
    best_metrics: dict = field(default_factory=dict)
    bad_evals: int = 0
    skipped: int = 0
    elapsed: float = 0.0


def total_steps(cfg: TrainSection, batches_per_epoch: Optional[int], tokens_per_step: Optional[int]) -> int:
    budgets = []
    if cfg.max_steps:
        budgets.append(cfg.max_steps)
    if cfg.max_tokens and tokens_per_step:
        budgets.append(math.ceil(cfg.max_tokens / tokens_per_step))
    if not budgets:
        if batches_per_epoch is None:
            raise UserError("streaming data needs train.max_steps or train.max_tokens")
        budgets.append(max(1, math.ceil(cfg.epochs * batches_per_epoch / cfg.grad_accum)))
    return min(budgets)


class StopRequested:
    """SIGTERM / SIGINT set a flag; the loop checkpoints at the next step boundary and exits."""

    def __init__(self):
        self.signal: Optional[int] = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _handle(self, signum, _frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def evaluate(accelerator, model, task: Task, batches: Iterable[dict], log=None, mixed_precision: bool = True) -> dict[str, float]:
    """Run the task's eval step over (this rank's share of) the batches and combine all ranks.

    Numbers are summed; sequences (arrays, or lists of texts / records: generation, per-example outputs) are
    concatenated in the *global* batch order, as one process would see them: rank r holds batches r, r + W,
    r + 2W, ... (engine/batches.eval_batches), so the gathered parts are interleaved back batch by batch. Numeric
    sequences arrive as numpy arrays, others as lists. With `log`, long evaluations report progress.
    `mixed_precision=False` measures in fp32 whatever the accelerator's precision (compress compares models that way)."""
    from accelerate.utils import AutocastKwargs, gather_object

    model.eval()
    sums: dict[str, float] = {}
    per_batch: list[dict[str, list]] = []  # this rank's sequences, one dict per batch, in its order
    progress = ProgressLine(len(batches) if hasattr(batches, "__len__") else None, "eval batches",
                        log if accelerator.is_main_process else None)
    with torch.no_grad(), accelerator.autocast(None if mixed_precision else AutocastKwargs(enabled=False)):
        for batch in batches:
            progress.update()
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            seqs = {}
            for k, v in task.eval_step(model, batch).items():
                if isinstance(v, (list, tuple)) or np.ndim(v) > 0:
                    seqs[k] = np.asarray(v).tolist() if not isinstance(v, (list, tuple)) else list(v)
                else:
                    sums[k] = sums.get(k, 0.0) + float(v)
            per_batch.append(seqs)
    progress.close()
    model.train()
    local = {"sums": sums, "batches": per_batch}
    parts = gather_object([local]) if accelerator.num_processes > 1 else [local]
    return task.compute_metrics(combine_ranks(parts))


def combine_ranks(parts: list[dict]) -> dict[str, Any]:
    """All ranks' evaluation accumulators as one process would have them: sums added, sequences in global batch
    order (global batch j * W + r is rank r's j-th)."""
    totals: dict[str, Any] = {}
    for p in parts:
        for k, v in p["sums"].items():
            totals[k] = totals.get(k, 0.0) + v
    for j in range(max((len(p["batches"]) for p in parts), default=0)):
        for p in parts:
            if j < len(p["batches"]):
                for k, v in p["batches"][j].items():
                    totals.setdefault(k, []).extend(v)
    return {k: (_as_array(v) if isinstance(v, list) else v) for k, v in totals.items()}


def _as_array(values: list):
    """Numbers (and rows of numbers) as a numpy array, as tasks computed metrics from before; texts and records
    (generated replies, spans, per-example outputs) stay a list."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged rows
        return values
    return values if array.dtype.kind in "OUS" else array


def check_metric(cfg: TrainSection, task: Task) -> None:
    """train.metric_for_best must be one of the task's metrics (checked before any training starts)."""
    if cfg.metric_for_best is not None and cfg.metric_for_best not in task.metrics:
        raise UserError(f"train.metric_for_best: '{cfg.metric_for_best}' is not a metric of task {task.name}; "
                        f"expected one of {', '.join(task.metrics)}")


def accumulate_gradients(accelerator, model, task: Task, micro: list[dict]) -> tuple[torch.Tensor, float]:
    """Backward over the micro-batches of one optimizer step; return (this rank's loss sum, targets on all ranks).

    Each micro-batch's summed loss is divided by the number of targets in the whole window
    on all ranks, so k micro-batches of b give exactly the gradient of one batch of k*b
    (averaging per-micro-batch means would weight short batches too much).
    """
    n_local = sum(task.count_targets(b) for b in micro)
    n_global = accelerator.reduce(torch.tensor(float(n_local), device=accelerator.device), "sum").item()
    # DDP averages gradients over ranks, hence * world: the result is sum(losses) / n_global.
    scale = accelerator.num_processes / max(n_global, 1.0)
    total = torch.zeros((), device=accelerator.device)
    for i, b in enumerate(micro):
        last = i == len(micro) - 1
        with (contextlib.nullcontext() if last else accelerator.no_sync(model)):
            loss_sum = task.loss(model, b)
            accelerator.backward(loss_sum * scale)
        total += loss_sum.detach().float()
    return total, n_global


def train(*, accelerator, model, task: Task, train_batches, eval_fn: Optional[Callable[[], Iterable[dict]]],
          cfg: TrainSection, out: Path, save_final: Callable[[torch.nn.Module, Path, dict], None],
          resume: bool = False, tokens_per_step: Optional[int] = None, log=print,
          on_step: Optional[Callable[[Progress], None]] = None, hparams: Optional[dict] = None) -> dict:
    """Train `model` on `train_batches`; evaluate with `eval_fn()` batches; write everything under `out`.
    `hparams`: the resolved recipe, logged once to the experiment trackers."""
    check_metric(cfg, task)
    steps = total_steps(cfg, train_batches.batches_per_epoch, tokens_per_step)
    optimizer = build_optimizer(model, cfg)
    model, optimizer = accelerator.prepare(model, optimizer)
    weights = CheckpointWeights(accelerator, model)  # a frozen base: checkpoints hold only the trainable weights
    # The scheduler is not prepared: accelerate would step it once per process.
    scheduler = build_scheduler(optimizer, cfg, steps)
    metric_name = cfg.metric_for_best or next(iter(task.metrics))
    greater = task.metrics.get(metric_name)
    prog = Progress()
    tracking = trackers.start(accelerator, out, hparams)  # before the loop: importing a tracker costs seconds
    mlog = MetricsLog(out, accelerator, metric=metric_name, greater=greater, plots=cfg.plots, trackers=tracking, log=log)

    if resume:
        ckpt = rundir.latest_checkpoint(out)
        try:
            state = rundir.load_checkpoint(accelerator, ckpt)
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise UserError(f"--resume: checkpoint {ckpt} does not fit this model and recipe: "
                            f"{str(e).strip().splitlines()[0][:200]}") from None
        scheduler.load_state_dict(state["scheduler"])
        train_batches.load_state_dict(state["data"])
        prog = Progress(**state["progress"])
        mlog.truncate(prog.step)
        log(f"resumed from {ckpt} at step {prog.step}")
    if prog.step >= steps:
        log(f"nothing to do: step {prog.step} of {steps}")

    def checkpoint(force: bool = False) -> Optional[Path]:
        """force: written even with keep_checkpoints 0 (a run stopped by a signal, the final checkpoint)."""
        if cfg.keep_checkpoints == 0 and not force:
            return None
        state = {"progress": prog.__dict__, "scheduler": scheduler.state_dict(), "data": train_batches.state_dict(),
                 "total_steps": steps, "weights": weights.describe()}
        return rundir.save_checkpoint(accelerator, out, prog.step, state, max(cfg.keep_checkpoints, 1))

    def save_model(path: Path) -> None:
        """Gather the full weights on every rank (needed under FSDP / ZeRO-3); only the main process writes."""
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            save_final(accelerator.unwrap_model(model), path, state_dict)
        accelerator.wait_for_everyone()

    def run_eval() -> bool:
        """Evaluate, log, track the best; True when early stopping says stop."""
        if eval_fn is None:
            return False
        metrics = evaluate(accelerator, model, task, eval_fn(), log)
        prog.evals += 1
        value = metrics.get(metric_name)
        if value is None:
            raise UserError(f"train.metric_for_best: '{metric_name}' is not a metric of this task; "
                            f"choose one of {', '.join(metrics)}")
        improved = prog.best is None or (value > prog.best if greater else value < prog.best)
        if improved:
            prog.best, prog.best_step, prog.best_metrics, prog.bad_evals = value, prog.step, metrics, 0
            if task.keep_best:
                save_model(out / "best")
        else:
            prog.bad_evals += 1
        mlog.eval(prog, metrics, lr=scheduler.get_last_lr()[0])
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        log(f"step {prog.step}: eval {shown}{'  (best)' if improved else ''}")
        return cfg.early_stopping_patience is not None and prog.bad_evals >= cfg.early_stopping_patience

    model.train()
    world = accelerator.num_processes
    micro_iter = iter(train_batches)
    t_start = time.perf_counter() - prog.elapsed
    t_log, tok_log, ex_log, loss_acc, n_acc = time.perf_counter(), prog.tokens, prog.examples, 0.0, 0
    bar = _progress_bar(accelerator, steps, prog.step)
    start_step, t_run = prog.step, time.perf_counter()  # ETA from this process's own pace (a resume starts midway)
    stopped_by: Optional[int] = None
    with StopRequested() as stop:
        while prog.step < steps:
            micro = [next(micro_iter) for _ in range(cfg.grad_accum)]
            micro = [{k: v.to(accelerator.device) for k, v in b.items()} for b in micro]
            step_loss, n_global = accumulate_gradients(accelerator, model, task, micro)
            # One small all-reduce so that every rank takes the same decision (skip, stop) at the same step.
            flags = torch.tensor([float(not torch.isfinite(step_loss)), float(stop.signal is not None)],
                                 device=accelerator.device)
            if world > 1:
                flags = accelerator.reduce(flags, "sum")
            stopping = bool(flags[1] > 0)
            if flags[0] > 0:
                optimizer.zero_grad(set_to_none=True)
                if prog.skipped < cfg.skip_nonfinite:
                    prog.skipped += 1
                    log(f"step {prog.step + 1}: loss is not finite; skipped ({prog.skipped} of at most {cfg.skip_nonfinite})")
                    continue
                last = rundir.latest_checkpoint(out)
                raise UserError(f"training diverged: loss is {step_loss.item()} at step {prog.step + 1}; "
                                f"last good checkpoint: {last or 'none'}; lower train.lr or raise train.warmup_steps"
                                + ("" if cfg.skip_nonfinite else " (train.skip_nonfinite=N skips N bad steps)"))
            if cfg.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            prog.step += 1
            prog.tokens += sum(task.count_tokens(b) for b in micro) * world
            prog.examples += sum(task.count_examples(b) for b in micro) * world
            loss_acc += step_loss.item()
            n_acc += n_global

            if prog.step % cfg.log_every == 0 or prog.step == steps:
                now = time.perf_counter()
                tps = (prog.tokens - tok_log) / max(now - t_log, 1e-9)
                # inputs that are not tokens (images): the pace in examples
                eps = (prog.examples - ex_log) / max(now - t_log, 1e-9)
                pace = f"{tps:,.0f} tok/s" if prog.tokens else rate(eps, "ex", ",.1f")
                loss_sum_all = accelerator.reduce(torch.tensor(loss_acc, device=accelerator.device), "sum").item()
                loss_val = loss_sum_all / max(n_acc, 1)
                lr = scheduler.get_last_lr()[0]
                prog.elapsed = now - t_start
                extra = _train_extras(accelerator, task)
                mlog.train(prog, loss_val, lr, tps, eps, extra)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_val:.4f}", lr=f"{lr:.2e}", pace=pace)
                    bar.update(prog.step - bar.n)
                else:
                    done = prog.step - start_step
                    shown = "".join(f"  {k} {v:.4f}" for k, v in extra.items())
                    log(f"step {prog.step}/{steps}  loss {loss_val:.4f}{shown}  lr {lr:.2e}  {pace}  "
                        f"{eta_text(done, steps - start_step, time.perf_counter() - t_run)}")
                t_log, tok_log, ex_log, loss_acc, n_acc = now, prog.tokens, prog.examples, 0.0, 0

            prog.elapsed = time.perf_counter() - t_start
            if on_step is not None:
                on_step(prog)
            at_end = prog.step == steps
            epoch_end = cfg.eval_every_epoch and _epoch_ended(prog.step, cfg.grad_accum, train_batches.batches_per_epoch)
            do_eval = (cfg.eval_every and prog.step % cfg.eval_every == 0) or epoch_end or at_end
            early = run_eval() if do_eval else False
            save_every = cfg.save_every or cfg.eval_every
            if (save_every and prog.step % save_every == 0 and not at_end) or stopping or \
                    (epoch_end and not cfg.save_every and not at_end):
                checkpoint(force=stopping)
            if stopping:
                stopped_by = stop.signal or signal.SIGTERM
                break
            if early:
                log(f"early stopping: no improvement of {metric_name} in {cfg.early_stopping_patience} evaluations")
                break
    if bar is not None:
        bar.close()
    prog.elapsed = time.perf_counter() - t_start
    if stopped_by is not None:
        rundir.write_status(out, "stopped", step=prog.step) if accelerator.is_main_process else None
        log(f"stopped by signal {stopped_by} at step {prog.step}; resume with --resume")
        accelerator.end_training()
        sys.exit(128 + stopped_by)

    # The last checkpoint lets `--resume` extend a finished run with a larger budget; older ones only take room.
    final_ckpt = checkpoint(force=True) if cfg.keep_checkpoints_at_end else None
    if accelerator.is_main_process:
        rundir.prune_checkpoints(out, cfg.keep_checkpoints_at_end)
        if final_ckpt is not None:
            log(f"resumable checkpoint {final_ckpt}: {rundir.dir_bytes(final_ckpt) / 2**20:,.1f} MiB "
                f"(train.keep_checkpoints_at_end: 0 keeps only the final model)")
    # One decision for all ranks, taken before the main process moves best/ into place: read from the disk by each
    # rank, a slower rank found best/ already gone, saved the last model too and its collectives no longer matched
    # (rank 0 exited while rank 1 waited in a barrier: gloo "Connection closed by peer").
    use_best = _all_ranks_take(accelerator, task.keep_best and (out / "best").is_dir())
    if not use_best:
        save_model(out)
    summary = {
        "task": task.name, "steps": prog.step, "total_steps": steps, "tokens": prog.tokens, "examples": prog.examples,
        "train_runtime_s": round(prog.elapsed, 2), "tokens_per_s": round(prog.tokens / max(prog.elapsed, 1e-9), 1),
        "world_size": world, "skipped_nonfinite_steps": prog.skipped, "metric_for_best": metric_name, "best": prog.best, "best_step": prog.best_step,
        "best_metrics": prog.best_metrics, "final_metrics": mlog.last_eval, "checkpoint": str(final_ckpt) if final_ckpt else None,
    }
    summary["saved"] = f"best (step {prog.best_step})" if use_best else f"last (step {prog.step})"
    if accelerator.is_main_process:
        if use_best:
            _promote_best(out / "best", out)
        mlog.summary(summary)
    accelerator.wait_for_everyone()
    weights.remove()
    accelerator.end_training()
    return summary


def _train_extras(accelerator, task: Task) -> dict[str, float]:
    """The task's own training-log metrics (take_train_sums, added over ranks in one all-reduce); {} for most tasks.
    The sums' keys are the same on every rank (the same task code ran the same number of batches)."""
    sums = task.take_train_sums() if hasattr(task, "take_train_sums") else {}
    if not sums:
        return {}
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        values = accelerator.reduce(values, "sum")
    return task.train_metrics(dict(zip(keys, values.tolist())))


def _all_ranks_take(accelerator, value):
    """The main process's `value`, on every rank."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def _epoch_ended(step: int, grad_accum: int, batches_per_epoch: Optional[int]) -> bool:
    """Did optimizer step `step` consume the last micro-batch of an epoch? (Micro-batches run on across
    epochs, so with grad_accum not dividing the epoch this is the step that crossed the boundary.)"""
    if not batches_per_epoch:
        return False
    return (step * grad_accum) // batches_per_epoch > ((step - 1) * grad_accum) // batches_per_epoch


def _promote_best(best_dir: Path, out: Path) -> None:
    import os

    for f in best_dir.iterdir():
        os.replace(f, out / f.name)
    best_dir.rmdir()


def _progress_bar(accelerator, total: int, initial: int):
    if not accelerator.is_main_process or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)
