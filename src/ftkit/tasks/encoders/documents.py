"""Documents as tokenized sentences, for next-sentence prediction: flat arrays, cached on disk.

A document is one row of the text column: a jsonl/csv row (an IMDB review), a text-file line, or a
blank-line-separated paragraph with `data.sample_by: paragraph` (a whole file with `document`).
Each document is split into sentences (tasks/encoders/sentences.py) and every sentence is tokenized once,
without special tokens. The result is three arrays - tokens, sentence offsets, document offsets -
cached under data.cache_dir with the same key scheme as the token streams (tokenizer, files, settings).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ftkit.data import token_cache
from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe
from ftkit.tasks.encoders.sentences import split_sentences

CORPUS_VERSION = 1  # bump when the sentence splitter changes: it is part of the cache key


@dataclass
class SentenceCorpus:
    tokens: np.ndarray        # every sentence's token ids, concatenated
    sent_offsets: np.ndarray  # sentence i is tokens[sent_offsets[i]:sent_offsets[i + 1]]
    doc_offsets: np.ndarray   # document d is sentences doc_offsets[d]:doc_offsets[d + 1]

    @property
    def n_docs(self) -> int:
        return len(self.doc_offsets) - 1

    @property
    def n_sentences(self) -> int:
        return len(self.sent_offsets) - 1

    def sentence_lengths(self) -> np.ndarray:
        return np.diff(self.sent_offsets)

    def doc_sizes(self) -> np.ndarray:
        """Sentences per document."""
        return np.diff(self.doc_offsets)

    def span(self, first: int, last: int) -> np.ndarray:
        """Tokens of sentences first..last-1 (adjacent in the arrays, so one slice)."""
        return np.asarray(self.tokens[self.sent_offsets[first]:self.sent_offsets[last]], dtype=np.int64)


def _leading_space(tokenizer) -> bool:
    """Byte-level BPE marks word starts with the space before them ('Ġword'): a sentence that follows another
    is encoded with its space, as it would be inside the text. Other tokenizers ignore the space."""
    return "ByteLevel" in repr(tokenizer.backend_tokenizer.pre_tokenizer)


def build_corpus(texts: Iterable[list[str]], tokenizer) -> SentenceCorpus:
    """Split batches of documents into sentences and tokenize them; empty documents are dropped."""
    space = _leading_space(tokenizer)
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.uint32
    chunks, sent_lens, doc_sizes = [], [], []
    encoder = token_cache.plain_encoder(tokenizer)
    for batch in texts:
        sents, sizes = [], []
        for doc in batch:
            parts = split_sentences(doc)
            sents.extend((" " + s if space and i else s) for i, s in enumerate(parts))
            sizes.append(len(parts))
        ids = token_cache.encode_texts(tokenizer, sents, add_eos=False, encoder=encoder) if sents else []
        pos = 0
        for n in sizes:
            kept = [x for x in ids[pos:pos + n] if x]  # a sentence of characters the tokenizer drops: gone
            pos += n
            if kept:
                doc_sizes.append(len(kept))
                sent_lens.extend(len(x) for x in kept)
                chunks.append(np.fromiter((t for x in kept for t in x), dtype=dtype))
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    sent_offsets = np.concatenate([[0], np.cumsum(sent_lens, dtype=np.int64)])
    doc_offsets = np.concatenate([[0], np.cumsum(doc_sizes, dtype=np.int64)])
    return SentenceCorpus(tokens, sent_offsets.astype(np.int64), doc_offsets.astype(np.int64))


def cached_corpus(recipe: Recipe, tokenizer, split: str, ds_factory: Callable, log=print) -> Optional[SentenceCorpus]:
    """The sentence corpus of `split`, from the cache or built from `ds_factory()` (called only on a miss)."""
    key = token_cache.cache_key(recipe, tokenizer, f"{split}-sentences-v{CORPUS_VERSION}")
    folder = Path(recipe.data.cache_dir) / key
    path = folder / f"{split}.sentences.npz"
    if path.is_file():
        with np.load(path) as z:
            corpus = SentenceCorpus(z["tokens"], z["sent_offsets"], z["doc_offsets"])
        log(f"{split}: {corpus.n_docs:,} documents, {corpus.n_sentences:,} sentences, {len(corpus.tokens):,} tokens "
            f"from cache {path}")
        return corpus
    ds = ds_factory()
    if ds is None:
        return None
    t0 = time.perf_counter()
    corpus = build_corpus(token_cache.raw_batches(ds, recipe.data.text_column), tokenizer)
    dt = time.perf_counter() - t0
    if corpus.n_docs == 0:
        raise UserError(f"data.{split}: no text in column '{recipe.data.text_column}' (empty corpus)")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{split}.{os.getpid()}.npz"
    np.savez(tmp, tokens=corpus.tokens, sent_offsets=corpus.sent_offsets, doc_offsets=corpus.doc_offsets)
    os.replace(tmp, path)  # atomic, as the token streams
    meta = {"split": split, "documents": corpus.n_docs, "sentences": corpus.n_sentences, "tokens": int(len(corpus.tokens)),
            "seconds": round(dt, 3), "data": recipe.data.model_dump(mode="json")}
    (folder / f"{split}.sentences.json").write_text(json.dumps(meta, indent=2))
    log(f"{split}: {corpus.n_docs:,} documents -> {corpus.n_sentences:,} sentences, {len(corpus.tokens):,} tokens "
        f"in {dt:.1f}s -> {path}")
    return corpus
