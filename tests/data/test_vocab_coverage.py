"""data/vocab_coverage: how well a tokenizer covers a data set's words, measured on real text with the packaged
MiniLM (English uncased WordPiece): English captions near 1 piece per word, German ones split far more often."""

import gzip

import pytest

from ftkit.data import vocab_coverage as vc

from conftest import DATA, need
from tiny_models import minilm_tokenizer

MULTI30K = DATA / "multi30k" / "raw"


def lines(lang: str) -> list[str]:
    with gzip.open(need(MULTI30K / f"train.{lang}.gz"), "rt", encoding="utf-8") as f:
        return [next(f) for _ in range(800)]


@pytest.fixture(scope="module")
def tok():
    return minilm_tokenizer()


def test_first_words_stops_at_the_limit():
    assert vc.first_words(["a b c", "d e", "f"], limit=4) == ["a", "b", "c", "d"]
    assert vc.first_words([], limit=4) == [] and vc.coverage(None, []) is None


def test_english_is_covered_german_is_not(tok):
    en = vc.coverage(tok, vc.first_words(lines("en")))
    de = vc.coverage(tok, vc.first_words(lines("de")))
    assert en["words"] == de["words"] == vc.SAMPLE_WORDS
    assert en["pieces_per_word"] < 1.3 and en["many_pieces_share"] < 0.05 and not vc.poor(en)
    assert de["pieces_per_word"] > 1.9 and de["many_pieces_share"] > 0.2 and vc.poor(de)
    assert "pieces per word" in vc.describe(de) and "5,000 training words" in vc.describe(de)


def test_unknown_words_are_counted(tok):
    cov = vc.coverage(tok, ["hello", "\u2603\u2603", "world", "\U0001f9ff"])  # a snowman pair and a nazar amulet: [UNK]
    assert cov["unk_share"] == 0.5 and vc.poor(cov)
