"""`ftkit report RUN [RUN ...] [-o report.html]`: one self-contained HTML page comparing runs.

Overlaid curves of what the runs share (train loss, each validation metric), a table of best / final metrics,
time, pace, parameters and status, and the recipe keys whose values differ. Read-only on the runs: everything
comes from their files (run.json, recipe.yaml, metrics.json, metrics.jsonl, train_log.jsonl), so a run still
going is reported as far as it got. No network: CSS inline, pictures as data: URIs.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ftkit import registry
from ftkit.engine import curves
from ftkit.engine.rundir import read_json
from ftkit.errors import UserError
from ftkit.paths import did_you_mean
from ftkit.wording import metric as metric_text
from ftkit.wording import rate

RUN_FILES = ("run.json", "metrics.jsonl", "metrics.json", curves.TRAIN_LOG)


@dataclass
class Run:
    label: str
    path: Path
    status: str
    recipe: dict
    summary: dict
    train: list[dict]
    evals: list[dict]
    task: str = "?"
    total_steps: Optional[int] = None  # the budget, from run.json while a run is going

    @property
    def metrics(self) -> list[str]:
        return curves.eval_metrics(self.evals)


def load_run(arg: str) -> Run:
    path = Path(arg)
    if not path.is_dir():
        guess = did_you_mean(arg)
        raise UserError(f"RUN: {arg} is not a directory" + (f"; did you mean {guess}?" if guess else
                                                            " (expected a run's output_dir, e.g. runs/NAME)"))
    if not any((path / f).is_file() for f in RUN_FILES):
        raise UserError(f"RUN: {arg} is not a run (none of {', '.join(RUN_FILES)} in it)")
    try:
        recipe = yaml.safe_load((path / "recipe.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        recipe = {}
    summary = read_json(path / "metrics.json")
    state = read_json(path / "run.json")
    status = state.get("status") or ("finished" if summary else "?")
    run = Run(label=path.resolve().name, path=path, status=status, recipe=recipe if isinstance(recipe, dict) else {},
              summary=summary, train=curves.read_jsonl(path / curves.TRAIN_LOG),
              evals=curves.read_jsonl(path / curves.EVAL_LOG))
    run.task = summary.get("task") or run.recipe.get("task") or "?"
    run.total_steps = state.get("total_steps")
    return run


def _labels(runs: list[Run]) -> None:
    """Runs with the same directory name (runs/a/x, runs/b/x) are told apart by their parent."""
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.label] = seen.get(r.label, 0) + 1
    for r in runs:
        if seen[r.label] > 1:
            r.label = f"{r.path.parent.name}/{r.path.name}"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_diff(runs: list[Run]) -> dict[str, list]:
    """The recipe keys whose values differ between the runs (a key one run lacks counts as a difference)."""
    flats = [_flat(r.recipe) for r in runs]
    keys = sorted(set().union(*flats)) if flats else []
    table = {k: [f.get(k, "—") for f in flats] for k in keys}
    return {k: vals for k, vals in table.items() if len({repr(v) for v in vals}) > 1}


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


def _best(run: Run) -> tuple[Optional[str], Optional[float], Optional[int]]:
    metric = run.summary.get("metric_for_best") or next(
        (e.get("metric_for_best") for e in reversed(run.evals) if e.get("metric_for_best")), None) \
        or (run.recipe.get("train") or {}).get("metric_for_best")
    if metric is None and run.metrics:  # a run that has not said yet: its task's headline metric, if it logs it
        headline = registry.entry(run.task).headline if run.task in registry.NAMES else None
        metric = headline if headline in run.metrics else run.metrics[0]
    if run.summary.get("best") is not None:
        return metric, run.summary["best"], run.summary.get("best_step")
    step = curves.best_step(run.evals, metric, None)
    row = next((e for e in run.evals if e.get("step") == step), {})
    return metric, row.get(f"eval_{metric}"), step


def _pace(run: Run) -> str:
    s, last = run.summary, (run.train[-1] if run.train else {})
    if s.get("tokens"):
        return f"{s.get('tokens_per_s', 0):,.0f} tok/s"
    if s.get("examples"):
        return rate(s.get('examples_per_s', s['examples'] / max(s.get('train_runtime_s', 1), 1e-9)), "ex", ",.1f")
    if last.get("tokens_per_s"):
        return f"{last['tokens_per_s']:,.0f} tok/s"
    return rate(last["examples_per_s"], "ex", ",.1f") if last.get("examples_per_s") else "—"


def summary_table(runs: list[Run], shared: list[str]) -> str:
    head = ["run", "task", "status", "steps", "best", *[f"final {html.escape(m)}" for m in shared], "time", "pace", "parameters"]
    rows = []
    for r in runs:
        metric, value, step = _best(r)
        last = r.evals[-1] if r.evals else {}
        steps = r.summary.get("steps") or (r.train[-1]["step"] if r.train else last.get("step"))
        total = r.summary.get("total_steps") or r.total_steps
        elapsed = r.summary.get("train_runtime_s") or (r.train[-1].get("elapsed_s") if r.train else last.get("elapsed_s"))
        params = r.summary.get("parameters")
        rows.append([html.escape(r.label), html.escape(r.task), f'<span class="st-{html.escape(r.status)}">{html.escape(r.status)}</span>',
                     f"{_fmt(steps)}" + (f" / {_fmt(total)}" if total else ""),
                     f"{html.escape(metric)} {html.escape(metric_text(value))} (step {_fmt(step)})" if metric and value is not None else "—",
                     *[html.escape(metric_text(last.get(f"eval_{m}"))) for m in shared],
                     f"{elapsed:,.0f} s" if isinstance(elapsed, (int, float)) else "—", _pace(r),
                     f"{params / 1e6:.2f}M" if params else "—"])
    return _table(head, rows)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def curve_images(runs: list[Run], shared: list[str]) -> list[str]:
    shown = []
    if any(r.train for r in runs):
        series = [(r.label, [(t["step"], t["loss"]) for t in r.train if curves.is_number(t.get("loss"))]) for r in runs]
        shown.append(_png(curves.overlay(series, "train loss", smoothed=True), "train loss"))
        series = [(r.label, [(t["step"], t["lr"]) for t in r.train if curves.is_number(t.get("lr"))]) for r in runs]
        shown.append(_png(curves.overlay(series, "learning rate"), "learning rate"))
    for m in shared:
        series = [(r.label, [(e["step"], e[f"eval_{m}"]) for e in r.evals if curves.is_number(e.get(f"eval_{m}"))])
                  for r in runs]
        shown.append(_png(curves.overlay(series, f"validation {m}"), f"validation {m}"))
    return shown


CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td code{font-size:12px}.note{color:#8a5a00}.st-finished{color:#1a7f37}.st-running{color:#0969da}
.st-stopped{color:#cf222e}.curves img{max-width:48%;margin:4px;border:1px solid #eee}"""


def build(args: list[str], log=print) -> tuple[str, list[str]]:
    """(the page, the warnings said on the way)."""
    runs = [load_run(a) for a in args]
    _labels(runs)
    notes = []
    tasks = sorted({r.task for r in runs})
    metric_sets = [set(r.metrics) for r in runs if r.evals]
    first = next((r.metrics for r in runs if r.evals), [])  # the order of the first run that has evaluations
    shared = [m for m in first if all(m in s for s in metric_sets)]
    if len(tasks) > 1:
        left = sorted(set().union(*metric_sets) - set(shared)) if metric_sets else []
        notes.append(f"runs of different tasks ({', '.join(tasks)}): compared what they share"
                     + (f" (validation {', '.join(shared)})" if shared else " (train loss only)")
                     + (f"; left out: {', '.join(left)}" if left else ""))
    for r in runs:
        if not r.evals:
            notes.append(f"{r.label}: no evaluation yet (train loss only)")
    images, plots_note = [], None
    if curves.available():
        images = curve_images(runs, shared)
    else:
        plots_note = f"curves not drawn: {curves.PLOTS_HINT}"
        notes.append(plots_note)
    for n in notes:
        log(f"warning: {n}")
    diff = recipe_diff(runs)
    diff_html = _table(["recipe key", *[html.escape(r.label) for r in runs]],
                       [[f"<code>{html.escape(k)}</code>", *[f"<code>{_fmt(v)}</code>" for v in vals]] for k, vals in diff.items()]) \
        if diff else "<p>The runs' recipes are the same.</p>" if len(runs) > 1 else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ftkit report: {html.escape(', '.join(r.label for r in runs))}</title>
<style>{CSS}</style></head><body>
<h1>ftkit report</h1>
<p>{len(runs)} run(s), written {time.strftime('%Y-%m-%d %H:%M:%S')} from: {', '.join(f'<code>{html.escape(str(r.path))}</code>' for r in runs)}</p>
{''.join(f'<p class="note">{html.escape(n)}</p>' for n in notes)}
<h2>Results</h2>
{summary_table(runs, shared)}
<h2>Curves</h2>
<div class="curves">{''.join(images) or '<p>Nothing to draw yet.</p>'}</div>
{'<h2>Recipe differences</h2>' + diff_html if len(runs) > 1 else ''}
</body></html>
"""
    return page, notes


def write(args: list[str], output: str, overwrite: bool = False, log=print) -> Path:
    out = Path(output)
    if out.exists() and (out.is_dir() or not overwrite):
        raise UserError(f"-o: {output} exists" + (" and is a directory" if out.is_dir() else
                                                  "; pass --overwrite to replace it, or choose another name"))
    page, _ = build(args, log)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
