"""How much of next-sentence prediction on IMDB reviews a bag of words already solves.

    .venv/bin/python bench/nsp_lexical_baseline.py

Pairs as ftkit builds them (A = the first k sentences of a review, B = what follows, or in half of the
pairs a run of sentences from a random sentence of another review; about 50 words a side), then a
logistic regression on the TF-IDF cosine of A and B (+ their lengths), trained on half, scored on the
other half. Words, not WordPiece tokens, and one pair per review: an estimate of what NSP asks of the
model, not ftkit's exact evaluation pairs. Measured 2026-11-22: 0.71 (4,915 pairs).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "imdb" / "train.jsonl"


def main() -> None:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from ftkit.data.sentences import split_sentences

    docs = [split_sentences(json.loads(line)["text"]) for line in open(IMDB, encoding="utf-8")]
    docs = [d for d in docs if len(d) >= 2]
    rng = np.random.default_rng(0)
    pairs, y = [], []
    for i, d in enumerate(docs):
        k = int(rng.integers(1, len(d)))
        if rng.random() < 0.5:
            b, label = d[k:], 0
        else:
            other = docs[(i + 1 + int(rng.integers(len(docs) - 1))) % len(docs)]
            b, label = other[int(rng.integers(len(other))):], 1
        pairs.append((" ".join(" ".join(d[:k]).lower().split()[-50:]), " ".join(" ".join(b).lower().split()[:50])))
        y.append(label)
    vec = TfidfVectorizer(min_df=2, sublinear_tf=True).fit([a + " " + b for a, b in pairs])
    va, vb = vec.transform([a for a, _ in pairs]), vec.transform([b for _, b in pairs])
    cos = np.asarray(va.multiply(vb).sum(1)).ravel()
    x = np.c_[cos, [len(a.split()) for a, _ in pairs], [len(b.split()) for _, b in pairs]]
    y = np.array(y)
    half = len(y) // 2
    acc = LogisticRegression().fit(x[:half], y[:half]).score(x[half:], y[half:])
    print(f"TF-IDF cosine + lengths, logistic regression: NSP accuracy {acc:.3f} on {len(y) - half:,} held-out pairs "
          f"({len(y):,} pairs in all)")


if __name__ == "__main__":
    main()
