"""AESLC's lead baseline: the first N words of the email body as its subject line, N tuned on dev by ROUGE-L, scored on
test with ftkit's own ROUGE (tasks/seq2seq/metrics.rouge: rouge-score, stemming on), the same scorer `ftkit eval`
uses for a trained model: the floor a summarizer must clear (issue 32: the best path beats it by >= 3 ROUGE-L).

    python bench/probes/aeslc_lead.py                      # target: the original subject_line (PEGASUS' protocol)
    python bench/probes/aeslc_lead.py --target annotations  # the mean over the 3 human subject lines (lowercased)

Writes bench/results/aeslc_lead.json. Words are whitespace-separated tokens of the body (Enron artefacts kept).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ftkit.tasks.seq2seq.metrics import rouge

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "aeslc"


def read(split: str) -> list[dict]:
    with open(DATA / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def lead(rows: list[dict], n: int) -> list[str]:
    return [" ".join(r["email_body"].split()[:n]) for r in rows]


def scores(rows: list[dict], n: int, target: str) -> dict:
    """ROUGE of the first n words; against `annotations`: each of the 3 human lines, averaged (lowercased, as they are)."""
    if target == "subject_line":
        return rouge(lead(rows, n), [r["subject_line"] for r in rows])
    runs = [rouge(lead(rows, n), [r["annotations"][i] for r in rows], lowercase=True) for i in range(3)]
    return {k: sum(run[k] for run in runs) / 3 for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=["subject_line", "annotations"], default="subject_line")
    ap.add_argument("--max-words", type=int, default=20)
    a = ap.parse_args()
    t0 = time.perf_counter()
    dev, test = read("dev"), read("test")
    on_dev = {n: scores(dev, n, a.target)["rougeL"] for n in range(1, a.max_words + 1)}
    best = max(on_dev, key=on_dev.get)
    result = {"target": a.target, "dev_rougeL_by_words": {n: round(v, 2) for n, v in on_dev.items()}, "best_words": best,
              "test": {k: round(v, 2) for k, v in scores(test, best, a.target).items()}, "dev_emails": len(dev),
              "test_emails": len(test), "seconds": round(time.perf_counter() - t0, 1)}
    out = ROOT / "bench" / "results" / f"aeslc_lead{'' if a.target == 'subject_line' else '_annotations'}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("dev ROUGE-L by N: " + ", ".join(f"{n}: {v:.2f}" for n, v in on_dev.items()))
    t = result["test"]
    print(f"lead-{best} on test ({len(test):,} emails, target {a.target}): ROUGE-1 {t['rouge1']:.2f} / ROUGE-2 "
          f"{t['rouge2']:.2f} / ROUGE-L {t['rougeL']:.2f}  ({result['seconds']} s) -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
