"""A run's curves as pictures: `training_curves.png` in the run (redrawn at each evaluation and at the end) and
the overlaid curves of `ftkit report`.

Both read the run's own files — train_log.jsonl (one line per log step: loss, lr, pace) and metrics.jsonl (one
line per evaluation) — so a run still going, or stopped, draws the same way as a finished one. matplotlib is
optional (extra `plots`); its object API is used, not pyplot: no global state, nothing kept between draws, safe
next to a training loop.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

CURVES_FILE = "training_curves.png"
TRAIN_LOG = "train_log.jsonl"
EVAL_LOG = "metrics.jsonl"
PLOTS_HINT = "matplotlib is missing: pip install 'ftkit[plots]'"


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def read_jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file (a line being written by a live run is skipped, not an error)."""
    rows = []
    try:
        text = path.read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def smooth(values: Sequence[float]) -> list[float]:
    """A centred moving average over ~5 % of the points (n/40 each side): the trend without the lag of an
    exponential average, which on a falling loss draws the smoothed curve above every raw point."""
    n = len(values)
    half = max(1, n // 40) if n >= 8 else 0
    out = []
    for i in range(n):
        window = values[max(0, i - half):i + half + 1]
        out.append(sum(window) / len(window))
    return out


COUNTS = ("examples", "tokens", "targets")  # what an evaluation counted, not how well the model did


def eval_metrics(evals: list[dict]) -> list[str]:
    """The scalar evaluation metrics of a run, in the order it logged them (eval_loss first when present)."""
    names: list[str] = []
    for row in evals:
        for k, v in row.items():
            if k.startswith("eval_") and is_number(v) and k[5:] not in names and k[5:] not in COUNTS:
                names.append(k[5:])
    return sorted(names, key=lambda n: n != "loss")


def best_step(evals: list[dict], metric: Optional[str], greater: Optional[bool]) -> Optional[int]:
    """The step of the best evaluation: as the loop recorded it (each row's best_step), else recomputed."""
    for row in reversed(evals):
        if row.get("best_step") is not None:
            return int(row["best_step"])
    points = [(r["step"], r[f"eval_{metric}"]) for r in evals if metric and is_number(r.get(f"eval_{metric}"))]
    if not points:
        return None
    pick = max if (greater if greater is not None else metric != "loss" and metric != "perplexity") else min
    return pick(points, key=lambda p: p[1])[0]


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _figure(width: float, height: float):
    # a Figure saves through the Agg canvas itself: no pyplot, no backend switch for the rest of the process
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _tokens_axis(ax, train: list[dict], evals: list[dict]) -> None:
    """A top x-axis in tokens, where the task counts them (steps -> tokens by interpolation over the log)."""
    pts = sorted({(r["step"], r["tokens"]) for r in train + evals if is_number(r.get("tokens")) and r.get("tokens")})
    if len(pts) < 2:
        return
    import numpy as np

    steps, toks = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
    top = ax.secondary_xaxis("top", functions=(lambda s: np.interp(s, steps, toks), lambda t: np.interp(t, toks, steps)))
    top.set_xlabel("tokens")


def draw_run(run_dir: Path, title: str = "", metric: Optional[str] = None, greater: Optional[bool] = None) -> Optional[Path]:
    """Draw `run_dir/training_curves.png`; None when there is nothing to draw yet. Written to a temporary name
    and renamed: a reader (a browser, `ftkit report`) never sees half a file."""
    train, evals = read_jsonl(run_dir / TRAIN_LOG), read_jsonl(run_dir / EVAL_LOG)
    if not train and not evals:
        return None
    metric = metric or next((r.get("metric_for_best") for r in reversed(evals) if r.get("metric_for_best")), None)
    others = [m for m in eval_metrics(evals) if m != "loss"]
    # loss across the top, the other metrics two per row, the learning rate in a thin strip at the bottom
    grid = [["loss", "loss"]] + [[a, b or a] for a, b in zip(others[::2], others[1::2] + [None])] + [["lr", "lr"]]
    ratios = [1.5] + [1.0] * (len(grid) - 2) + [0.5]
    fig = _figure(9.0, 1.0 + 2.0 * sum(ratios))
    panels = fig.subplot_mosaic(grid, sharex=True, height_ratios=ratios)
    axes = [panels["loss"]] + [panels[m] for m in others] + [panels["lr"]]
    best = best_step(evals, metric, greater)
    ax = axes[0]
    if train:
        steps, loss = [r["step"] for r in train], [r["loss"] for r in train]
        ax.plot(steps, loss, color="tab:blue", alpha=0.25, lw=1, label="train loss")
        ax.plot(steps, smooth(loss), color="tab:blue", lw=1.8, label="train loss (smoothed)")
    ev = [(r["step"], r["eval_loss"]) for r in evals if is_number(r.get("eval_loss"))]
    if ev:
        ax.plot(*zip(*ev), "o-", color="tab:orange", ms=4, label="validation loss")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    _tokens_axis(ax, train, evals)
    for ax, name in zip(axes[1:-1], others):
        pts = [(r["step"], r[f"eval_{name}"]) for r in evals if is_number(r.get(f"eval_{name}"))]
        if pts:
            ax.plot(*zip(*pts), "o-", color="tab:green", ms=4)
        ax.set_ylabel(name)
    lr = [(r["step"], r["lr"]) for r in train if is_number(r.get("lr"))]
    if lr:
        axes[-1].plot(*zip(*lr), color="tab:gray", lw=1.2)
    axes[-1].set_ylabel("lr")
    axes[-1].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    axes[-1].set_xlabel("step")
    if best is not None:
        for ax in axes[:-1]:
            ax.axvline(best, color="tab:red", ls="--", lw=1)
        row = next((r for r in evals if r.get("step") == best), {})
        value = row.get(f"eval_{metric}") if metric else None
        label = f"best step {best}" + (f": {metric} {value:.4g}" if is_number(value) else "")
        axes[0].text(0.01, 0.97, label, transform=axes[0].transAxes, va="top", fontsize=8, color="tab:red")
    fig.suptitle(title or run_dir.name, fontsize=10)
    path = run_dir / CURVES_FILE
    tmp = run_dir / f".{CURVES_FILE}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path


def _legend_text(label: str) -> str:
    """A run name as matplotlib shows it literally: a leading '_' would hide it, '$...$' would be read as math."""
    label = label.replace("$", r"\$")
    return f" {label}" if label.startswith("_") else label


def overlay(series: list[tuple[str, list[tuple[float, float]]]], ylabel: str, xlabel: str = "step",
            smoothed: bool = False) -> bytes:
    """One metric of several runs on one axis (`ftkit report`): PNG bytes."""
    fig = _figure(7.0, 3.6)
    ax = fig.subplots()
    for label, pts in series:
        if not pts:
            continue
        xs, ys = zip(*pts)
        label = _legend_text(label)
        if smoothed and len(ys) > 3:
            line, = ax.plot(xs, ys, alpha=0.2, lw=1)
            ax.plot(xs, smooth(ys), color=line.get_color(), lw=1.8, label=label)
        else:
            ax.plot(xs, ys, "o-" if len(xs) < 40 else "-", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
