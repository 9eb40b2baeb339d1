"""`ftkit runs [DIR]`: the runs under a folder (default runs/) as a table, newest first.

A run is a directory with run.json (written when it starts); what it reached comes from metrics.json when
it has finished, else from the last line of metrics.jsonl (a run still going, or stopped).
"""

from __future__ import annotations

from pathlib import Path

from ftkit.engine.curves import read_jsonl
from ftkit.engine.rundir import read_json
from ftkit.errors import UserError


def collect(folder: str) -> list[dict]:
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"DIR: {folder} is not a directory (expected a folder of runs, e.g. runs/)")
    rows = []
    for run_file in root.rglob("run.json"):
        run_dir = run_file.parent
        status, summary = read_json(run_file), read_json(run_dir / "metrics.json")
        # complete lines only: a live run's last one may be half written
        last = (read_jsonl(run_dir / "metrics.jsonl") or [{}])[-1]
        logged = read_jsonl(run_dir / "train_log.jsonl")
        recipe = {}
        try:
            import yaml

            recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text()) or {}
        except (OSError, ValueError, ImportError):
            pass
        metric = summary.get("metric_for_best") or (recipe.get("train") or {}).get("metric_for_best")
        best = summary.get("best")
        if best is None and metric and f"eval_{metric}" in last:
            best = last[f"eval_{metric}"]
        rows.append({"run": str(run_dir.relative_to(root)), "task": summary.get("task") or recipe.get("task") or "?",
                     "status": status.get("status", "?"),
                     "step": summary.get("steps", (logged[-1] if logged else {}).get("step", status.get("step", last.get("step")))),
                     "total_steps": summary.get("total_steps", status.get("total_steps")), "metric": metric, "best": best,
                     "time_s": summary.get("train_runtime_s", last.get("elapsed_s")), "updated": status.get("updated", ""),
                     "path": str(run_dir)})
    return sorted(rows, key=lambda r: r["updated"], reverse=True)


def table(rows: list[dict]) -> str:
    if not rows:
        return "no runs (no run.json) here"
    head = ("run", "task", "status", "steps", "best", "time", "updated")
    body = []
    for r in rows:
        steps = f"{r['step']}" + (f"/{r['total_steps']}" if r["total_steps"] else "") if r["step"] is not None else "-"
        best = f"{r['metric']} {r['best']:.4f}" if r["best"] is not None and r["metric"] else "-"
        t = f"{r['time_s']:,.0f} s" if isinstance(r["time_s"], (int, float)) else "-"
        body.append((r["run"], r["task"], r["status"], steps, best, t, r["updated"].replace("T", " ")))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)).rstrip() for b in body]
    return "\n".join(lines)
