"""The official SQuAD scores, offline: v1.1 exact match and F1 (evaluate-v1.1.py) and v2.0's HasAns / NoAns and
best-threshold figures (evaluate-v2.0.py), in percent as those scripts print them.

Written out here because nothing installed carries them: `evaluate.load("squad")` fetches its code from the hub
(the installed `evaluate` 0.4.6 ships no metric scripts), and transformers dropped its squad_metrics module. The
logic is the scripts' own, line for line where it matters: answers normalised by lower case, punctuation removed,
articles (a, an, the) removed, whitespace collapsed; token-overlap F1; the maximum over the reference answers; v2
scores an unanswerable question against the single reference "" and picks the no-answer threshold as
find_best_thresh does. tests/qa/test_metrics.py checks them against the official v1.1 script on real predictions.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Optional

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _f1(pred: list[str], gold: list[str], version_2: bool) -> float:
    if version_2 and (not pred or not gold):
        return float(pred == gold)  # v2: an empty answer is right only against an empty reference
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: str, references: list[str], version_2: bool = False) -> tuple[float, float]:
    """(exact match, F1) of one prediction, each the best over the references (0 or 1, and in [0, 1])."""
    if version_2:
        references = [r for r in references if normalize_answer(r)] or [""]
    pred = normalize_answer(prediction)
    exact = max(float(pred == normalize_answer(r)) for r in references)
    f1 = max(_f1(pred.split(), normalize_answer(r).split(), version_2) for r in references)
    return exact, f1


def squad_v1(predictions: dict[str, str], references: dict[str, list[str]]) -> dict:
    """evaluate-v1.1.py: `exact_match` and `f1` in percent over every referenced question (a question without a
    prediction scores 0, as the official script counts it)."""
    em = f1 = 0.0
    for qid, refs in references.items():
        if qid in predictions:
            e, f = question_scores(predictions[qid], refs)
            em, f1 = em + e, f1 + f
    n = max(len(references), 1)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def _best_threshold(answerable: dict[str, bool], scores: dict[str, float], null_gap: dict[str, float],
                    predicted: dict[str, str]) -> tuple[float, float]:
    """find_best_thresh of evaluate-v2.0.py: start from every question answered "no answer", then answer the
    questions in order of rising null gap; the best total and the gap where it is reached."""
    current = best = float(sum(not a for a in answerable.values()))
    threshold = 0.0
    for qid in sorted(null_gap, key=lambda k: null_gap[k]):
        if qid not in scores:
            continue
        current += scores[qid] if answerable[qid] else (-1.0 if predicted[qid] else 0.0)
        if current > best:
            best, threshold = current, null_gap[qid]
    return 100.0 * best / max(len(scores), 1), threshold


def squad_v2(spans: dict[str, str], null_gap: dict[str, float], references: dict[str, list[str]],
             threshold: Optional[float] = None) -> dict:
    """evaluate-v2.0.py over the best non-null span of each question and its null gap (null score minus the span's
    score): "no answer" where the gap is above `threshold` (None: the threshold of the best F1, which is reported
    either way). `exact_match` / `f1` are at that threshold; HasAns_* / NoAns_* split them; best_* are the
    official best-threshold figures."""
    answerable = {q: any(normalize_answer(r) for r in refs) for q, refs in references.items()}
    raw = {q: question_scores(spans.get(q, ""), refs, version_2=True) for q, refs in references.items()}
    ems, f1s = {q: e for q, (e, _) in raw.items()}, {q: f for q, (_, f) in raw.items()}
    best_em, em_thresh = _best_threshold(answerable, ems, null_gap, spans)
    best_f1, f1_thresh = _best_threshold(answerable, f1s, null_gap, spans)
    used = f1_thresh if threshold is None else threshold

    def at(scores: dict, qids) -> float:
        qids = list(qids)
        total = sum(float(not answerable[q]) if null_gap.get(q, 0.0) > used else scores[q] for q in qids)
        return 100.0 * total / max(len(qids), 1)

    has = [q for q in references if answerable[q]]
    no = [q for q in references if not answerable[q]]
    out = {"exact_match": at(ems, references), "f1": at(f1s, references), "null_threshold": float(used),
           "best_exact": best_em, "best_exact_thresh": float(em_thresh), "best_f1": best_f1, "best_f1_thresh": float(f1_thresh),
           "HasAns_total": len(has), "NoAns_total": len(no)}
    if has:
        out.update(HasAns_exact=at(ems, has), HasAns_f1=at(f1s, has))
    if no:
        out.update(NoAns_exact=at(ems, no), NoAns_f1=at(f1s, no))
    return out
