"""How well a tokenizer covers the words of a data set: the share of words that become [UNK] and how many pieces
words are split into.

A pretrained model fine-tuned on text its vocabulary was not built for (Portuguese through an English
WordPiece, emoji through an uncased one) loses words to [UNK] or chops them into many pieces; a run then learns
little and says nothing about why. Measured once at the start of cls / ner fine-tuning (logged, kept in
metrics.json) and quoted when a run ends having learned nothing (workflows/diagnose.py).
"""

from __future__ import annotations

from typing import Iterable, Optional

SAMPLE_WORDS = 5000  # the first N words of the training data: enough for shares to +-1 %, and fast (~0.1 s)
MANY_PIECES = 3  # a word in this many pieces or more is "split into many"
# above either, the vocabulary is named as a likely cause when a run learns nothing. Measured with the packaged
# MiniLM (English uncased WordPiece) on the first 5,000 words: Multi30k English 1.14 pieces per word, WNUT-17 tweets
# 1.47, French 1.74, German 2.10, Czech 2.48 (no [UNK]: accents are stripped; tests/data/test_vocab_coverage.py)
POOR_UNK_SHARE, POOR_PIECES_PER_WORD = 0.02, 1.6


def first_words(texts: Iterable[str], limit: int = SAMPLE_WORDS) -> list[str]:
    """The first `limit` whitespace-separated words of `texts`."""
    out: list[str] = []
    for text in texts:
        out.extend(str(text).split()[: limit - len(out)])
        if len(out) >= limit:
            break
    return out


def coverage(tokenizer, words: list[str]) -> Optional[dict]:
    """{words, unk_share, many_pieces_share, pieces_per_word} of `words` encoded one by one without special tokens;
    None when there are no words. unk_share counts words with at least one [UNK] piece."""
    if not words:
        return None
    ids = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    pieces = [len(x) for x in ids]
    return {"words": len(words),
            "unk_share": round(sum(unk is not None and unk in x for x in ids) / len(words), 4),
            "many_pieces_share": round(sum(n >= MANY_PIECES for n in pieces) / len(words), 4),
            "pieces_per_word": round(sum(pieces) / len(words), 3)}


def describe(cov: Optional[dict]) -> str:
    if cov is None:
        return "vocabulary: no words to measure"
    return (f"vocabulary: {cov['unk_share']:.1%} of words [UNK], {cov['many_pieces_share']:.1%} in {MANY_PIECES}+ pieces, "
            f"{cov['pieces_per_word']:.2f} pieces per word (first {cov['words']:,} training words)")


def poor(cov: Optional[dict]) -> bool:
    """The tokenizer covers the text poorly enough to name it as a cause."""
    return cov is not None and (cov["unk_share"] > POOR_UNK_SHARE or cov["pieces_per_word"] > POOR_PIECES_PER_WORD)
