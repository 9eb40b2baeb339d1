"""Per-feature start/end candidates -> one answer per question, as transformers' postprocess_qa_predictions
(examples/pytorch/question-answering/utils_qa.py) does: the n-best starts x n-best ends of every window of the
question, only spans inside the context (the candidates were drawn there), end >= start, at most
qa.max_answer_length tokens; the best start + end logit over all windows wins and is mapped back to the
context's characters through the offsets. The null score (start + end logit at [CLS]) is the smallest over the
windows; its gap to the best span decides "no answer" under SQuAD v2.

What comes in is small and fixed-size per feature (eval_step keeps only the n-best logits and their positions),
so it is gathered from every process as it is and de-duplicated by feature id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_SPAN = -1e9  # the null gap of a question without any valid span: always "no answer"


@dataclass
class Answer:
    text: str
    start: int  # character offsets into the context: context[start:end] == text
    end: int
    score: float  # softmax over the question's n-best spans (and the null answer under v2)
    null_gap: float  # null score minus the best span's score (v2: "no answer" above the threshold)


def _softmax_first(scores: np.ndarray) -> float:
    z = np.exp(scores - scores.max())
    return float(z[0] / z.sum())


def answers(arrays: dict, example_of: list[int], offsets: list[np.ndarray], contexts: list[str], n_best: int,
            max_answer_length: int, version_2: bool = False) -> dict[int, Answer]:
    """{example index: its answer} for the examples with at least one scored feature. `arrays`: the eval arrays
    (feature, s_idx, s_val, e_idx, e_val, null), rows in any order, duplicates allowed."""
    feats = np.asarray(arrays["feature"], dtype=np.int64)
    _, first = np.unique(feats, return_index=True)  # a feature scored twice (uneven last batches) counts once
    by_example: dict[int, list[int]] = {}
    for row in np.sort(first):
        by_example.setdefault(example_of[int(feats[row])], []).append(int(row))
    s_idx, e_idx = np.asarray(arrays["s_idx"]), np.asarray(arrays["e_idx"])
    s_val, e_val, null = np.asarray(arrays["s_val"], float), np.asarray(arrays["e_val"], float), np.asarray(arrays["null"], float)
    out = {}
    for ex, rows in by_example.items():
        cands: list[tuple[float, int, int]] = []
        min_null = float("inf")
        for r in rows:
            min_null = min(min_null, float(null[r]))
            si, ei = s_idx[r], e_idx[r]
            total = s_val[r][:, None] + e_val[r][None, :]
            length = ei[None, :] - si[:, None] + 1
            ok = np.isfinite(total) & (si[:, None] >= 0) & (ei[None, :] >= 0) & (length >= 1) & (length <= max_answer_length)
            offs = offsets[int(feats[r])]
            for a, b in zip(*np.nonzero(ok)):
                cands.append((float(total[a, b]), int(offs[si[a]][0]), int(offs[ei[b]][1])))
        cands.sort(key=lambda c: -c[0])
        cands = cands[:n_best]
        context = contexts[ex]
        if not cands:
            out[ex] = Answer("", 0, 0, 0.0, -NO_SPAN)
            continue
        best, start, end = cands[0]
        pool = np.array([c[0] for c in cands] + ([min_null] if version_2 else []))
        out[ex] = Answer(context[start:end], start, end, _softmax_first(pool), min_null - best)
    return out
