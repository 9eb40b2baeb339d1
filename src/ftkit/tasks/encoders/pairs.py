"""Sentence-pair examples for BERT's next-sentence prediction, built from a SentenceCorpus.

Up front, once and deterministically, each document with two or more sentences is cut into
chunks of consecutive sentences of about `max_tokens` tokens (BERT's create_pretraining_data):
a chunk is one training item. The random parts are drawn per example from the example's generator in the
collate (seeded by seed, epoch and example: every epoch pairs anew, resume and evaluation are exact):
- the split point: A = the chunk's first k sentences (k random, at least one);
- true next (label 0): B = the sentences that follow A in the same document;
- random next (label 1): B = consecutive sentences from a random sentence of ANOTHER document
  (one that has two or more sentences too, so a negative B looks like a positive one);
- then the pair is cut to `max_tokens` by trimming the longer side first: A loses tokens at its
  start, B at its end, so the junction that NSP judges stays intact.
Whether a pair is a negative is a fair coin per example (tasks/encoders/nsp.py).

Documents of a single sentence cannot give a true next sentence. They are not dropped: they are
packed, several to a sequence ([CLS] s1 [SEP] s2 [SEP] ...), into single-segment examples that
train the masked LM only (NSP label -100, ignored), and counted in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ftkit.errors import UserError
from ftkit.tasks.encoders.documents import SentenceCorpus

PAIR, SINGLE = 0, 1


@dataclass(frozen=True)
class Item:
    """One training example before its random choices: a chunk of a document, or a pack of one-sentence documents."""
    source: "PairItems"
    kind: int   # PAIR or SINGLE
    start: int  # PAIR: sentences [start, end) of document `doc`; SINGLE: entries [start, end) of source.singles
    end: int
    doc: int


class PairItems(Sequence):
    def __init__(self, corpus: SentenceCorpus, max_tokens: int, key: str = "data.train"):
        """`max_tokens`: tokens of A + B (block_size minus [CLS] and two [SEP])."""
        if max_tokens < 2:
            raise UserError(f"data.block_size: {max_tokens + 3} is too short for a sentence pair; expected at least 5")
        self.corpus, self.max_tokens = corpus, max_tokens
        sizes = corpus.doc_sizes()
        self.pair_docs = np.flatnonzero(sizes >= 2)
        if len(self.pair_docs) == 0:
            raise UserError(f"{key}: documents too short to form a sentence pair: none of the {corpus.n_docs:,} documents "
                            "has two sentences (sentences end at . ! ? before a capital letter, or at a line break); "
                            "expected multi-sentence documents, e.g. data.sample_by: paragraph or document for text files")
        if len(self.pair_docs) == 1:
            raise UserError(f"{key}: only one document has two or more sentences; next-sentence prediction is impossible "
                            "with a single document (the negative B must come from another one); expected several documents")
        lens = corpus.sentence_lengths()
        kinds, starts, ends, docs = [], [], [], []
        for d in self.pair_docs:
            for s, e in _chunks(lens, int(corpus.doc_offsets[d]), int(corpus.doc_offsets[d + 1]), max_tokens):
                kinds.append(PAIR), starts.append(s), ends.append(e), docs.append(d)
        self.n_pairs = len(kinds)
        # one-sentence documents, packed greedily in corpus order: each sentence costs its tokens + one [SEP]
        single_docs = np.flatnonzero(sizes == 1)
        self.singles = corpus.doc_offsets[single_docs]  # their sentence ids
        s, used = 0, 0
        for i, n in enumerate(lens[self.singles] + 1):
            if used and used + n > max_tokens + 2:  # block = [CLS] + packed sentences with their [SEP]s
                kinds.append(SINGLE), starts.append(s), ends.append(i), docs.append(-1)
                s, used = i, 0
            used += n
        if len(self.singles):
            kinds.append(SINGLE), starts.append(s), ends.append(len(self.singles)), docs.append(-1)
        self.kinds, self.starts = np.asarray(kinds, np.int8), np.asarray(starts, np.int64)
        self.ends, self.docs = np.asarray(ends, np.int64), np.asarray(docs, np.int64)

    def __len__(self) -> int:
        return len(self.kinds)

    def __getitem__(self, i: int) -> Item:
        return Item(self, int(self.kinds[i]), int(self.starts[i]), int(self.ends[i]), int(self.docs[i]))

    def describe(self) -> str:
        n_single = len(self) - self.n_pairs
        text = f"{len(self.pair_docs):,} documents -> {self.n_pairs:,} sentence-pair chunks"
        if len(self.singles):
            text += (f"; {len(self.singles):,} one-sentence documents (no next sentence) packed into {n_single:,} "
                     "single-segment masked-LM examples")
        return text

    # -- per-example random choices (the example's generator) --------------------------------------------------
    def pair(self, item: Item, random_next: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) token ids for a PAIR item; B is the true continuation unless `random_next`."""
        c = self.corpus
        n = item.end - item.start
        a_end = item.start + (int(rng.integers(1, n)) if n >= 2 else 1)
        a = c.span(item.start, a_end)
        want = max(self.max_tokens - len(a), 1)
        if random_next:
            other = self.other_document(item.doc, rng)
            first, last = int(c.doc_offsets[other]), int(c.doc_offsets[other + 1])
            b_start = int(rng.integers(first, last))
        else:
            b_start, last = a_end, int(c.doc_offsets[item.doc + 1])
        b = c.span(b_start, _fill(c.sent_offsets, b_start, last, want))
        return truncate_pair(a, b, self.max_tokens)

    def other_document(self, doc: int, rng: np.random.Generator) -> int:
        """A random next sentence's document: uniform over the pair documents other than `doc` (one draw)."""
        pos = int(np.searchsorted(self.pair_docs, doc))
        j = int(rng.integers(len(self.pair_docs) - 1))
        return int(self.pair_docs[j + (j >= pos)])

    def single(self, item: Item) -> list[np.ndarray]:
        """The sentences of a SINGLE item (the collate joins them with [SEP] and cuts to the block)."""
        return [self.corpus.span(int(s), int(s) + 1) for s in self.singles[item.start:item.end]]


def _chunks(lens: np.ndarray, first: int, last: int, target: int) -> list[tuple[int, int]]:
    """Consecutive sentence spans of a document, each closed once it holds `target` tokens (BERT's chunking).

    A last chunk of one sentence has no next sentence in its document: it joins the chunk before."""
    out, start, total = [], first, 0
    for i in range(first, last):
        total += int(lens[i])
        if total >= target or i == last - 1:
            out.append((start, i + 1))
            start, total = i + 1, 0
    if len(out) >= 2 and out[-1][1] - out[-1][0] == 1:
        out[-2:] = [(out[-2][0], out[-1][1])]
    return out


def _fill(sent_offsets: np.ndarray, first: int, last: int, want: int) -> int:
    """End (exclusive) of the shortest run of sentences from `first` (at least one, at most up to `last`) with >= want tokens."""
    need = sent_offsets[first] + want
    end = int(np.searchsorted(sent_offsets, need, side="left"))
    return max(first + 1, min(end, last))


def truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut A + B to max_tokens, one token at a time from the longer side (B on ties): A from its start, B from its end."""
    la, lb = len(a), len(b)
    excess = la + lb - max_tokens
    if excess > 0:
        first = min(excess, abs(la - lb))
        if la > lb:
            la -= first
        else:
            lb -= first
        rest = excess - first  # now equal: alternate, B first
        lb -= (rest + 1) // 2
        la -= rest // 2
    return a[len(a) - la:], b[:lb]
