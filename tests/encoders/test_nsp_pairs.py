"""Sentence-pair items: true next vs a segment of another document, the length cap, too-short corpora."""

import copy

import numpy as np
import pytest

from ftkit.errors import UserError
from ftkit.tasks.encoders.documents import SentenceCorpus, build_corpus
from ftkit.tasks.encoders.pairs import PAIR, SINGLE, PairItems, truncate_pair


def synthetic_corpus(doc_sizes, seed=0) -> SentenceCorpus:
    """Every token id is its own position in the corpus, so each token tells its document and sentence."""
    rng = np.random.default_rng(seed)
    sent_lens = rng.integers(3, 40, size=sum(doc_sizes))
    tokens = np.arange(int(sent_lens.sum()), dtype=np.int64)
    sent_offsets = np.concatenate([[0], np.cumsum(sent_lens)])
    doc_offsets = np.concatenate([[0], np.cumsum(doc_sizes)])
    return SentenceCorpus(tokens, sent_offsets, doc_offsets)


def locate(corpus, token):
    sent = int(np.searchsorted(corpus.sent_offsets, token, side="right") - 1)
    doc = int(np.searchsorted(corpus.doc_offsets, sent, side="right") - 1)
    return doc, sent


def test_true_next_and_negatives_from_another_document():
    rng = np.random.default_rng(1)
    corpus = synthetic_corpus(list(rng.integers(2, 30, size=60)) + [1] * 20)
    items = PairItems(corpus, max_tokens=61)
    for i in range(8000):
        it = items[i % items.n_pairs]
        assert it.kind == PAIR
        random_next = i % 2 == 1
        a, b = items.pair(it, random_next, rng)
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= 61  # the cap
        (doc_a, sent_a_last), (doc_b, sent_b_first) = locate(corpus, a[-1]), locate(corpus, b[0])
        assert doc_a == it.doc
        if random_next:
            assert doc_b != doc_a  # the negative comes from ANOTHER document
            assert corpus.doc_sizes()[doc_b] >= 2  # ... one that could also give a true pair
        else:
            assert doc_b == doc_a and sent_b_first == sent_a_last + 1  # B starts right after A (A lost tokens at its start only)
            assert a[-1] + 1 == b[0]
    # every other document serves as a negative source
    assert len({locate(corpus, items.pair(items[0], True, rng)[1][0])[0] for _ in range(3000)}) > 50


def test_chunks_cover_documents_in_order():
    corpus = synthetic_corpus([5, 12, 2, 30])
    items = PairItems(corpus, max_tokens=61)
    pairs = [items[i] for i in range(items.n_pairs)]
    for d in range(4):
        spans = [(p.start, p.end) for p in pairs if p.doc == d]
        assert spans[0][0] == corpus.doc_offsets[d] and spans[-1][1] == corpus.doc_offsets[d + 1]
        assert all(s2 == e1 for (_, e1), (s2, _) in zip(spans, spans[1:]))
        last = spans[-1]
        assert last[1] - last[0] >= 2  # a last chunk always has a split point


def test_one_sentence_documents_become_packed_single_segments():
    corpus = synthetic_corpus([3, 4] + [1] * 30)
    items = PairItems(corpus, max_tokens=61)
    singles = [items[i] for i in range(len(items)) if items[i].kind == SINGLE]
    assert sum(it.end - it.start for it in singles) == 30
    for it in singles:
        sents = items.single(it)
        assert len(sents) == 1 or sum(len(s) + 1 for s in sents) <= 61 + 2  # [CLS] + sentences with their [SEP]
    assert "30 one-sentence documents" in items.describe()


def test_truncation_trims_the_longer_side_first():
    a, b = np.arange(10), np.arange(100, 103)
    ta, tb = truncate_pair(a, b, 8)
    assert list(ta) == [5, 6, 7, 8, 9] and list(tb) == [100, 101, 102]  # A loses its start
    ta, tb = truncate_pair(np.arange(6), np.arange(100, 106), 9)
    assert len(ta) == 5 and len(tb) == 4 and tb[0] == 100 and ta[-1] == 5  # B loses its end, B first on ties
    ta, tb = truncate_pair(np.arange(3), np.arange(3), 10)
    assert len(ta) == 3 and len(tb) == 3


def test_corpus_too_short_for_pairs():
    with pytest.raises(UserError, match="documents too short to form a sentence pair: none of the 5 documents"):
        PairItems(synthetic_corpus([1] * 5), 61, "data.train")
    with pytest.raises(UserError, match="only one document has two or more sentences; next-sentence prediction is impossible"):
        PairItems(synthetic_corpus([7, 1, 1]), 61, "data.train")
    with pytest.raises(UserError, match="data.block_size"):
        PairItems(synthetic_corpus([3, 3]), 1)


def test_build_corpus_from_real_reviews(tmp_path):
    from encoder_helpers import imdb_texts, train_tokenizer

    texts = imdb_texts(40)
    tok = train_tokenizer("wordpiece", "mlm+nsp", texts, tmp_path / "tok", vocab_size=1000)
    corpus = build_corpus([texts[:25], texts[25:]], tok)
    assert corpus.n_docs == 40 and corpus.n_sentences > 200
    first = tok.decode(corpus.span(0, 1).tolist())
    assert first == "story of a man who has unnatural feelings for a pig."
    assert corpus.tokens.max() < len(tok) and tok.cls_token_id not in corpus.tokens  # no special tokens inside


def test_other_document_is_uniform_over_the_other_pair_documents():
    corpus = synthetic_corpus([3, 1, 4, 2, 1, 5])  # pair documents: 0, 2, 3, 5
    items = PairItems(corpus, max_tokens=61)
    rng = np.random.default_rng(0)
    drawn = [items.other_document(2, rng) for _ in range(3000)]
    counts = {d: drawn.count(d) for d in set(drawn)}
    assert set(counts) == {0, 3, 5} and min(counts.values()) > 900  # never itself, never a one-sentence document
    # pair() makes exactly this draw after its split point: replaying it on a copy of the generator names B's document
    it = next(i for i in items if i.kind == PAIR and i.doc == 2)
    rng = np.random.default_rng(7)
    probe = copy.deepcopy(rng)
    probe.integers(1, it.end - it.start)
    expected = items.other_document(it.doc, probe)
    _, b = items.pair(it, True, rng)
    assert locate(corpus, b[0])[0] == expected
