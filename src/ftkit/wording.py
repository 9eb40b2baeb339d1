"""Words and numbers in what ftkit prints: the article before a generated word, a rate, a metric's value."""

from __future__ import annotations

import re

# Read letter by letter although they hold a vowel (task names, formats); words without a vowel (cls, mlm,
# sft) are read so anyway.
_SPELLED = {"ner", "mim", "bpe", "gguf", "nsp", "hf", "ppl"}
# Letters whose name starts with a vowel sound: an F, an H, an L, an M, an N, an R, an S, an X.
_VOWEL_LETTERS = "aefhilmnorsx"
# Vowel letters sounding like a consonant (a unigram, a user, a one-off, a European) and the silent h (an hour).
_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "ure", "uro", "eu", "one", "once")
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def article(word: str) -> str:
    """`a` or `an` for `word` by its sound: an image-cls model, an MLM, an SFT model, a cls model, a unigram."""
    m = re.match(r"[^a-z0-9]*([a-z]+|[0-9]+)", word.strip().lower())
    if not m:
        return "a"
    token = m.group(1)
    if token.isdigit():  # an 8-bit, an 11, an 18, an 80; a 4, a 16
        return "an" if token[0] == "8" or (len(token) in (2, 5) and token.startswith(("11", "18"))) else "a"
    if token in _SPELLED or not re.search(r"[aeiouy]", token):
        return "an" if token[0] in _VOWEL_LETTERS else "a"
    if token.startswith(_SILENT_H):
        return "an"
    if token.startswith(_CONSONANT_SOUND):
        return "a"
    return "an" if token[0] in "aeiou" else "a"


def with_article(word: str) -> str:
    """`word` with its article: with_article("image-cls") == "an image-cls"."""
    return f"{article(word)} {word}"


def round_rate(per_s: float, decimals: int = 1) -> float:
    """A rate kept to `decimals` from 1/s up and to 2 significant digits below (0.42, 0.0042): a slow run's rate
    is never rounded to 0."""
    return round(per_s, decimals) if per_s >= 1 or per_s <= 0 else float(f"{per_s:.2g}")


def per_second(count: float, seconds: float) -> float:
    return round_rate(count / max(seconds, 1e-9))


def rate(per_s: float, unit: str, fmt: str = ",.0f") -> str:
    """`1,234 examples/s` (`fmt` from 1/s up); below 1/s with 2 significant digits, `0.42 examples/s`, and below
    0.01/s as the time one takes, `240 s/example`: never `0 examples/s`."""
    if per_s >= 1 or per_s <= 0:
        return f"{per_s:{fmt}} {unit}/s"
    if per_s >= 0.01:
        return f"{per_s:.2g} {unit}/s"
    return f"{1 / per_s:,.0f} s/{unit[:-1] if unit.endswith('s') else unit}"


def metric(v) -> str:
    """A metric's value, every one with the same precision (4 decimals; large ones, perplexity, with thousands
    separators): a best 1.0 next to a final 0.41 reads 1.0000 and 0.4100, not 1 and 0.41."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return "—" if v is None else str(v)
    return f"{v:,.4f}" if abs(v) < 1e4 else f"{v:,.1f}"
