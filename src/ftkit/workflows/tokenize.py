"""`ftkit tokenize`: train the recipe's tokenizer, report its statistics, optionally encode the corpus."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ftkit import registry
from ftkit.data import sources, token_cache
from ftkit.data.lm_blocks import cached_blocks
from ftkit.data.tokenizer import load_tokenizer, save_tokenizer, sentinel, text_batches, train_from_recipe
from ftkit.data.tokenizer_source import default_corpus, write_settings
from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe
from ftkit.workflows.resolve import family

STATS_SAMPLE_BYTES = 20_000_000


def training_corpus(recipe: Recipe):
    """The rows a tokenizer trains on: the task's own text corpus (its family's corpus, e.g. ner's sentences), else
    data.train."""
    corpus = family(registry.entry(recipe.task)).corpus
    return corpus(recipe) if corpus is not None else default_corpus(recipe)


def run(recipe: Recipe, encode: bool = False, overwrite: bool = False, log=print) -> dict:
    cfg = recipe.tokenizer
    if cfg is None or cfg.kind is None:
        raise UserError("tokenizer.kind: set the kind of tokenizer to train (bpe, wordpiece, unigram or char)")
    target = Path(cfg.path)
    if target.exists():
        if not overwrite:
            raise UserError(f"tokenizer.path: {target} already exists; pass --overwrite to move it aside and train anew")
        aside = target.with_name(f"{target.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(target, aside)
        log(f"moved the earlier tokenizer {target} to {aside}")
    train_ds = training_corpus(recipe)
    sources.require_column(train_ds, recipe.data.text_column, "data.text_column", "data.train")
    t0 = time.perf_counter()
    tok, _ = train_from_recipe(recipe, registry.entry(recipe.task), train_ds)
    train_s = time.perf_counter() - t0
    save_tokenizer(tok, cfg.path)
    write_settings(recipe)
    tok = load_tokenizer(cfg.path)  # report on exactly what was saved
    # bytes per token on (a sample of) the training corpus
    n_bytes = n_tokens = 0
    for texts in text_batches(train_ds, recipe.data.text_column, STATS_SAMPLE_BYTES):
        n_bytes += sum(len(t.encode("utf-8")) for t in texts)
        n_tokens += sum(len(ids) for ids in token_cache.encode_texts(tok, texts, add_eos=False))
    stats = {"tokenizer": cfg.path, "kind": cfg.kind, "vocab_size": len(tok), "train_rows": len(train_ds),
             "corpus_bytes": n_bytes, "corpus_tokens": n_tokens, "bytes_per_token": round(n_bytes / max(n_tokens, 1), 3),
             "train_seconds": round(train_s, 2)}
    log(f"{cfg.kind} tokenizer -> {cfg.path}: vocab {len(tok):,}; corpus {n_bytes:,} bytes "
        f"({len(train_ds):,} rows) = {n_tokens:,} tokens, {stats['bytes_per_token']} bytes/token; trained in {train_s:.1f}s")
    if cfg.extra_ids:  # span corruption's sentinels: the model's vocabulary (len(tokenizer)) covers these ids
        first, last = (tok.convert_tokens_to_ids(sentinel(i)) for i in (0, cfg.extra_ids - 1))
        stats["sentinel_ids"] = {sentinel(0): first, sentinel(cfg.extra_ids - 1): last}
        log(f"tokenizer.extra_ids: {cfg.extra_ids} sentinel tokens, {sentinel(0)} = {first} down to "
            f"{sentinel(cfg.extra_ids - 1)} = {last}")
    if encode:
        cached_blocks(recipe, tok, log)
    return stats
