"""The one training loop every task uses, on `accelerate.Accelerator`.

Read `train` first, it is the whole story in named steps (`_Run`'s methods): set-up, optional resume, then per
optimizer step (`optimizer_step`): gather `grad_accum` micro-batches, normalise the summed loss by the number of
targets in the whole window (all ranks), backward, clip, step; log (`log_progress`), evaluate
(`evaluate_and_track`), checkpoint; finally save the model (`finish`). The run's small state lives in run_state.py.
Not `transformers.Trainer`: the plain loop is faster here and gives exact control of resume
and of loss normalisation (k micro-batches of b give the gradient of one batch of k*b).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch

from ftkit.engine import rundir, trackers
from ftkit.engine.checkpoint_weights import CheckpointWeights
from ftkit.engine.metrics_log import MetricsLog
from ftkit.engine.optim import build_optimizer, build_scheduler
from ftkit.engine.progress import Progress as ProgressLine  # (run_state.Progress is the training state)
from ftkit.engine.progress import eta_text
from ftkit.engine.run_state import (
    Pace,
    Progress,
    StopRequested,
    all_ranks_take,
    epoch_ended,
    progress_bar,
    promote_best,
    total_steps,
)
from ftkit.engine.task_api import Task
from ftkit.errors import UserError
from ftkit.recipe.schema import TrainSection
from ftkit.wording import rate


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
    parts = window_parts(task, micro)  # optional (Task.window_counts): other counts of the window, reduced with it
    counts = accelerator.reduce(torch.tensor([float(n_local), *parts.values()], device=accelerator.device), "sum").tolist()
    n_global = counts[0]
    # DDP averages gradients over ranks, hence * world: the result is sum(losses) / n_global.
    scale = accelerator.num_processes / max(n_global, 1.0)
    total = torch.zeros((), device=accelerator.device)
    if parts:
        task.window = {"targets": n_global, **dict(zip(parts, counts[1:]))}
    try:
        for i, b in enumerate(micro):
            last = i == len(micro) - 1
            with (contextlib.nullcontext() if last else accelerator.no_sync(model)):
                loss_sum = task.loss(model, b)
                accelerator.backward(loss_sum * scale)
            total += loss_sum.detach().float()
    finally:
        if parts:
            task.window = None
    return total, n_global


def window_parts(task: Task, micro: list[dict]) -> dict[str, float]:
    """This rank's sums of the task's other counts over the window ({} for a task without Task.window_counts)."""
    counts = getattr(task, "window_counts", None)
    if counts is None:
        return {}
    out: dict[str, float] = {}
    for b in micro:
        for k, v in counts(b).items():
            out[k] = out.get(k, 0.0) + float(v)
    return out


def train(*, accelerator, model, task: Task, train_batches, eval_fn: Optional[Callable[[], Iterable[dict]]],
          cfg: TrainSection, out: Path, save_final: Callable[[torch.nn.Module, Path, dict], None],
          resume: bool = False, tokens_per_step: Optional[int] = None, log=print,
          on_step: Optional[Callable[[Progress], None]] = None, hparams: Optional[dict] = None) -> dict:
    """Train `model` on `train_batches`; evaluate with `eval_fn()` batches; write everything under `out`.
    `hparams`: the resolved recipe, logged once to the experiment trackers."""
    check_metric(cfg, task)
    run = _Run(accelerator, model, task, train_batches, eval_fn, cfg, out, save_final, tokens_per_step, log, hparams)
    if resume:
        run.resume()
    if run.prog.step >= run.steps:
        log(f"nothing to do: step {run.prog.step} of {run.steps}")
    stopped_by = run.steps_until_done(on_step)
    if stopped_by is not None:
        run.exit_stopped(stopped_by)
    return run.finish()


def train_extras(accelerator, task: Task) -> dict[str, float]:
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


class _Run:
    """One training run's state and its named steps; `train` above reads as the whole story."""

    def __init__(self, accelerator, model, task: Task, train_batches, eval_fn, cfg: TrainSection, out: Path, save_final,
                 tokens_per_step: Optional[int], log, hparams: Optional[dict]):
        self.accelerator, self.task, self.train_batches, self.eval_fn = accelerator, task, train_batches, eval_fn
        self.cfg, self.out, self.save_final, self.log = cfg, out, save_final, log
        self.steps = total_steps(cfg, train_batches.batches_per_epoch, tokens_per_step)
        optimizer = build_optimizer(model, cfg)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.weights = CheckpointWeights(accelerator, self.model)  # a frozen base: checkpoints hold only the trainable weights
        # The scheduler is not prepared: accelerate would step it once per process.
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps)
        self.metric_name = cfg.metric_for_best or next(iter(task.metrics))
        self.greater = task.metrics.get(self.metric_name)
        self.prog = Progress()
        tracking = trackers.start(accelerator, out, hparams)  # before the loop: importing a tracker costs seconds
        self.mlog = MetricsLog(out, accelerator, metric=self.metric_name, greater=self.greater, plots=cfg.plots,
                               trackers=tracking, log=log)

    def resume(self) -> None:
        ckpt = rundir.latest_checkpoint(self.out)
        try:
            state = rundir.load_checkpoint(self.accelerator, ckpt)
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise UserError(f"--resume: checkpoint {ckpt} does not fit this model and recipe: "
                            f"{str(e).strip().splitlines()[0][:200]}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_batches.load_state_dict(state["data"])
        self.prog = Progress(**state["progress"])
        self.mlog.truncate(self.prog.step)
        self.log(f"resumed from {ckpt} at step {self.prog.step}")

    def checkpoint(self, force: bool = False) -> Optional[Path]:
        """force: written even with keep_checkpoints 0 (a run stopped by a signal, the final checkpoint)."""
        if self.cfg.keep_checkpoints == 0 and not force:
            return None
        state = {"progress": self.prog.__dict__, "scheduler": self.scheduler.state_dict(),
                 "data": self.train_batches.state_dict(), "total_steps": self.steps, "weights": self.weights.describe()}
        return rundir.save_checkpoint(self.accelerator, self.out, self.prog.step, state, max(self.cfg.keep_checkpoints, 1))

    def save_model(self, path: Path) -> None:
        """Gather the full weights on every rank (needed under FSDP / ZeRO-3); only the main process writes."""
        state_dict = self.accelerator.get_state_dict(self.model)
        if self.accelerator.is_main_process:
            self.save_final(self.accelerator.unwrap_model(self.model), path, state_dict)
        self.accelerator.wait_for_everyone()

    def evaluate_and_track(self) -> bool:
        """Evaluate, log, track the best; True when early stopping says stop."""
        if self.eval_fn is None:
            return False
        prog, cfg = self.prog, self.cfg
        metrics = evaluate(self.accelerator, self.model, self.task, self.eval_fn(), self.log)
        prog.evals += 1
        value = metrics.get(self.metric_name)
        if value is None:
            raise UserError(f"train.metric_for_best: '{self.metric_name}' is not a metric of this task; "
                            f"choose one of {', '.join(metrics)}")
        improved = prog.best is None or (value > prog.best if self.greater else value < prog.best)
        if improved:
            prog.best, prog.best_step, prog.best_metrics, prog.bad_evals = value, prog.step, metrics, 0
            if self.task.keep_best:
                self.save_model(self.out / "best")
        else:
            prog.bad_evals += 1
        self.mlog.eval(prog, metrics, lr=self.scheduler.get_last_lr()[0])
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.log(f"step {prog.step}: eval {shown}{'  (best)' if improved else ''}")
        return cfg.early_stopping_patience is not None and prog.bad_evals >= cfg.early_stopping_patience

    def optimizer_step(self, micro: list[dict], stop: StopRequested) -> tuple[Optional[tuple[float, int]], bool]:
        """Accumulate, then clip and step: ((loss sum, targets), stopping), or (None, stopping) for a skipped
        non-finite step. One small all-reduce makes every rank take the same decision (skip, stop) at the same step."""
        accelerator, cfg, prog = self.accelerator, self.cfg, self.prog
        step_loss, n_global = accumulate_gradients(accelerator, self.model, self.task, micro)
        flags = torch.tensor([float(not torch.isfinite(step_loss)), float(stop.signal is not None)], device=accelerator.device)
        if accelerator.num_processes > 1:
            flags = accelerator.reduce(flags, "sum")
        stopping = bool(flags[1] > 0)
        if flags[0] > 0:
            self.optimizer.zero_grad(set_to_none=True)
            if prog.skipped < cfg.skip_nonfinite:
                prog.skipped += 1
                self.log(f"step {prog.step + 1}: loss is not finite; skipped ({prog.skipped} of at most {cfg.skip_nonfinite})")
                return None, stopping
            last = rundir.latest_checkpoint(self.out)
            raise UserError(f"training diverged: loss is {step_loss.item()} at step {prog.step + 1}; "
                            f"last good checkpoint: {last or 'none'}; lower train.lr or raise train.warmup_steps"
                            + ("" if cfg.skip_nonfinite else " (train.skip_nonfinite=N skips N bad steps)"))
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        world = accelerator.num_processes
        prog.step += 1
        prog.tokens += sum(self.task.count_tokens(b) for b in micro) * world
        prog.examples += sum(self.task.count_examples(b) for b in micro) * world
        return (step_loss.item(), n_global), stopping

    def steps_until_done(self, on_step) -> Optional[int]:
        """Optimizer steps until the budget, a signal (returned) or early stopping; logs, evaluations, checkpoints."""
        accelerator, cfg, prog, steps = self.accelerator, self.cfg, self.prog, self.steps
        self.model.train()
        micro_iter = iter(self.train_batches)
        self.t_start = time.perf_counter() - prog.elapsed
        pace = Pace(prog)
        bar = progress_bar(accelerator, steps, prog.step)
        stopped_by: Optional[int] = None
        with StopRequested() as stop:
            while prog.step < steps:
                micro = [next(micro_iter) for _ in range(cfg.grad_accum)]
                micro = [{k: v.to(accelerator.device) for k, v in b.items()} for b in micro]
                done, stopping = self.optimizer_step(micro, stop)
                if done is None:
                    continue
                pace.add(*done)
                if prog.step % cfg.log_every == 0 or prog.step == steps:
                    self.log_progress(pace, bar)
                prog.elapsed = time.perf_counter() - self.t_start
                if on_step is not None:
                    on_step(prog)
                at_end = prog.step == steps
                epoch_end = cfg.eval_every_epoch and epoch_ended(prog.step, cfg.grad_accum, self.train_batches.batches_per_epoch)
                do_eval = (cfg.eval_every and prog.step % cfg.eval_every == 0) or epoch_end or at_end
                early = self.evaluate_and_track() if do_eval else False
                save_every = cfg.save_every or cfg.eval_every
                if (save_every and prog.step % save_every == 0 and not at_end) or stopping or \
                        (epoch_end and not cfg.save_every and not at_end):
                    self.checkpoint(force=stopping)
                if stopping:
                    stopped_by = stop.signal or signal.SIGTERM
                    break
                if early:
                    self.log(f"early stopping: no improvement of {self.metric_name} in {cfg.early_stopping_patience} evaluations")
                    break
        if bar is not None:
            bar.close()
        prog.elapsed = time.perf_counter() - self.t_start
        return stopped_by

    def log_progress(self, pace: Pace, bar) -> None:
        """The train line (or the bar), train_log.jsonl and the trackers: mean loss over all ranks since the last one."""
        accelerator, prog = self.accelerator, self.prog
        now = time.perf_counter()
        tps, eps = pace.rates(now)
        shown = f"{tps:,.0f} tok/s" if prog.tokens else rate(eps, "ex", ",.1f")  # inputs that are not tokens (images)
        loss_sum_all = accelerator.reduce(torch.tensor(pace.loss, device=accelerator.device), "sum").item()
        loss_val = loss_sum_all / max(pace.targets, 1)
        lr = self.scheduler.get_last_lr()[0]
        prog.elapsed = now - self.t_start
        extra = train_extras(accelerator, self.task)  # the task's own training metrics (dpo: rewards, log-probs)
        self.mlog.train(prog, loss_val, lr, tps, eps, extra)
        if bar is not None:
            bar.set_postfix(loss=f"{loss_val:.4f}", lr=f"{lr:.2e}", pace=shown)
            bar.update(prog.step - bar.n)
        else:
            more = "".join(f"  {k} {v:.4f}" for k, v in extra.items())
            self.log(f"step {prog.step}/{self.steps}  loss {loss_val:.4f}{more}  lr {lr:.2e}  {shown}  "
                     f"{eta_text(prog.step - pace.start_step, self.steps - pace.start_step, now - pace.t_run)}")
        pace.restart(now)

    def exit_stopped(self, signum: int) -> None:
        """A signal stopped the run: its checkpoint is written; say how to go on and exit 128 + signal."""
        rundir.write_status(self.out, "stopped", step=self.prog.step) if self.accelerator.is_main_process else None
        self.log(f"stopped by signal {signum} at step {self.prog.step}; resume with --resume")
        self.accelerator.end_training()
        sys.exit(128 + signum)

    def finish(self) -> dict:
        """The last checkpoint, the saved model (best or last), the summary in metrics.json."""
        accelerator, cfg, prog, out = self.accelerator, self.cfg, self.prog, self.out
        # The last checkpoint lets `--resume` extend a finished run with a larger budget; older ones only take room.
        final_ckpt = self.checkpoint(force=True) if cfg.keep_checkpoints_at_end else None
        if accelerator.is_main_process:
            rundir.prune_checkpoints(out, cfg.keep_checkpoints_at_end)
            if final_ckpt is not None:
                self.log(f"resumable checkpoint {final_ckpt}: {rundir.dir_bytes(final_ckpt) / 2**20:,.1f} MiB "
                         f"(train.keep_checkpoints_at_end: 0 keeps only the final model)")
        # One decision for all ranks, taken before the main process moves best/ into place: read from the disk by each
        # rank, a slower rank found best/ already gone, saved the last model too and its collectives no longer matched
        # (rank 0 exited while rank 1 waited in a barrier: gloo "Connection closed by peer").
        use_best = all_ranks_take(accelerator, self.task.keep_best and (out / "best").is_dir())
        if not use_best:
            self.save_model(out)
        summary = {
            "task": self.task.name, "steps": prog.step, "total_steps": self.steps, "tokens": prog.tokens,
            "examples": prog.examples, "train_runtime_s": round(prog.elapsed, 2),
            "tokens_per_s": round(prog.tokens / max(prog.elapsed, 1e-9), 1), "world_size": accelerator.num_processes,
            "skipped_nonfinite_steps": prog.skipped, "metric_for_best": self.metric_name, "best": prog.best,
            "best_step": prog.best_step, "best_metrics": prog.best_metrics, "final_metrics": self.mlog.last_eval,
            "checkpoint": str(final_ckpt) if final_ckpt else None,
        }
        summary["saved"] = f"best (step {prog.best_step})" if use_best else f"last (step {prog.step})"
        if accelerator.is_main_process:
            if use_best:
                promote_best(out / "best", out)
            self.mlog.summary(summary)
        accelerator.wait_for_everyone()
        self.weights.remove()
        accelerator.end_training()
        return summary
