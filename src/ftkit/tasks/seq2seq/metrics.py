"""Generation metrics, computed once from every generated text (gathered across ranks by the engine):
corpus BLEU and chrF through sacreBLEU (its defaults: 13a tokenisation, cased unless asked; the signature is
reported so a figure can be compared), ROUGE-1/2/L/Lsum F1 through rouge-score with stemming (the mean over
examples, x 100; not evaluate's bootstrap midpoint, which resamples), and the mean generated length."""

from __future__ import annotations


def bleu_chrf(predictions: list[str], references: list[str], lowercase: bool = False) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    b, c = bleu.corpus_score(predictions, [references]), chrf.corpus_score(predictions, [references])
    return {"bleu": float(b.score), "chrf": float(c.score)}


def signature(kind: str, lowercase: bool = False) -> str:
    """What the figures are (sacreBLEU's signatures; rouge-score's settings), for metrics.json and `ftkit eval`."""
    if kind == "rouge":
        return f"rouge-score F1 x 100, mean over examples, use_stemmer=True{', lowercased' if lowercase else ''}"
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    for metric in (bleu, chrf):  # the signature names the number of references: known once a corpus was scored
        metric.corpus_score(["a"], [["a"]])
    return f"{bleu.get_signature()} | {chrf.get_signature()}"


ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge(predictions: list[str], references: list[str], lowercase: bool = False) -> dict:
    """rougeLsum splits on newlines (summary-level LCS); texts without them score as rougeL does."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_KEYS, 0.0)
    for p, r in zip(predictions, references):
        if lowercase:
            p, r = p.lower(), r.lower()
        for k, s in scorer.score(r, p).items():
            totals[k] += s.fmeasure
    n = max(len(predictions), 1)
    return {k: 100 * v / n for k, v in totals.items()}


def score(kind: str, predictions: list[str], references: list[str], lowercase: bool = False) -> dict:
    return bleu_chrf(predictions, references, lowercase) if kind == "bleu" else rouge(predictions, references, lowercase)


def headline(kind: str) -> dict[str, bool]:
    """The task's metrics, greater-is-better flags; the first is the default train.metric_for_best."""
    if kind == "bleu":
        return {"bleu": True, "chrf": True, "loss": False, "gen_len": True}
    return {"rougeL": True, "rouge1": True, "rouge2": True, "rougeLsum": True, "loss": False, "gen_len": True}
