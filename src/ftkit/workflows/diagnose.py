"""A run that learned nothing says so at its end, with the likely causes to check.

"best validation f1 0.0000" alone tells a user nothing; what shows a run at its floor is task-specific (the Task's
`nothing_learned`: one class predicted everywhere, no entity found) or general (the training loss did not fall).
The causes named are the ones such runs have had: too few steps, a learning rate off by 10x, and a pretrained
model whose vocabulary does not cover the data's language (measured at the start: data/vocab_coverage.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ftkit.data import vocab_coverage
from ftkit.engine.curves import TRAIN_LOG, read_jsonl

FLAT_LOSS = 0.97  # the last logged training loss at or above this share of the first: "did not fall"


def loss_not_falling(out: Path) -> Optional[str]:
    rows = [r for r in read_jsonl(out / TRAIN_LOG) if isinstance(r.get("loss"), (int, float))]
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    if last["loss"] < FLAT_LOSS * first["loss"]:
        return None
    return f"the training loss did not fall ({first['loss']:.4f} at step {first['step']}, {last['loss']:.4f} at step {last['step']})"


def diagnose(task, summary: dict, recipe, out: Path, coverage: Optional[dict]) -> Optional[str]:
    """One line naming what shows that nothing was learned and the causes to check; None for a run that learned."""
    metrics = summary.get("best_metrics") or summary.get("final_metrics") or {}
    signs = [s for s in (task.nothing_learned(metrics) if metrics else None, loss_not_falling(out)) if s]
    if not signs:
        return None
    causes = [f"too few steps ({summary['steps']:,} ran: raise train.max_steps or train.epochs)",
              f"the learning rate (train.lr {recipe.train.lr:g}: try 3x higher and lower)"]
    if vocab_coverage.poor(coverage):
        causes.append(f"a model whose vocabulary does not cover this text ({vocab_coverage.describe(coverage)}): "
                      f"start from a model for this language")
    return f"this run learned nothing: {'; '.join(signs)}. Check: {'; '.join(causes)}"
