"""Entity-level precision / recall / F1 with conlleval's (and seqeval's default mode's) chunk rules.

Written here, not `evaluate.load("seqeval")`: that fetches a script from the hub and fails offline,
and the `seqeval` package is only needed to check this one (tests/ner/test_ner_cli.py
compares both on real model output). Works for IOB1, IOB2 and BIOES tag sequences.
"""

from __future__ import annotations

from collections import Counter

from ftkit.tasks.ner.spans import entities


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def entity_scores(true: list[list[str]], pred: list[list[str]]) -> dict:
    """Micro P/R/F1 over entities, per-type P/R/F1/support, and token accuracy."""
    gold, found = set(), set()
    for s, (t, p) in enumerate(zip(true, pred)):
        gold.update((s, *e) for e in entities(t))
        found.update((s, *e) for e in entities(p))
    hit = gold & found
    precision, recall, f1 = _prf(len(hit), len(found), len(gold))
    n_true, n_pred, n_hit = (Counter(e[1] for e in x) for x in (gold, found, hit))
    per_type = {}
    for typ in sorted(set(n_true) | set(n_pred)):
        p, r, f = _prf(n_hit[typ], n_pred[typ], n_true[typ])
        per_type[typ] = {"precision": p, "recall": r, "f1": f, "support": n_true[typ]}
    tokens = sum(len(t) for t in true)
    correct = sum(a == b for t, p in zip(true, pred) for a, b in zip(t, p))
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": correct / max(tokens, 1),
            "entities": len(gold), "predicted_entities": len(found), "per_type": per_type}
