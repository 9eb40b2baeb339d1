"""`ftkit tokenize`: train the recipe's tokenizer, report its statistics, optionally encode the corpus."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ftkit.data import sources, token_cache
from ftkit.data.tokenizer import load_tokenizer, save_tokenizer, text_batches, train_from_recipe
from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe

STATS_SAMPLE_BYTES = 20_000_000


SETTINGS_FILE = "ftkit_tokenizer.json"
SETTINGS_KEYS = ("kind", "vocab_size", "min_frequency", "lowercase", "max_train_bytes")


def write_settings(recipe: Recipe) -> None:
    """Record what the tokenizer was trained with, so a later recipe that asks for another one is not silently
    given this one."""
    import json

    cfg = recipe.tokenizer
    (Path(cfg.path) / SETTINGS_FILE).write_text(json.dumps({k: getattr(cfg, k) for k in SETTINGS_KEYS}, indent=2) + "\n")


def check_settings(recipe: Recipe) -> None:
    """An existing tokenizer that ftkit trained with other settings than the recipe's: an error, not a silent reuse."""
    import json

    cfg = recipe.tokenizer
    f = Path(cfg.path) / SETTINGS_FILE
    if not f.is_file():
        return  # trained elsewhere (or before ftkit recorded settings): used as it is
    saved = json.loads(f.read_text())
    for k in SETTINGS_KEYS:
        if k in saved and saved[k] != getattr(cfg, k):
            raise UserError(f"tokenizer.{k}: {cfg.path} was trained with {k} {saved[k]!r}, the recipe asks for "
                            f"{getattr(cfg, k)!r}; retrain it with `ftkit tokenize -r RECIPE --overwrite` (the old one "
                            f"is moved aside), or set tokenizer.{k}: {saved[k]!r}, or choose another tokenizer.path")


def training_corpus(recipe: Recipe):
    """The rows a tokenizer trains on: data.train as read for its task (ner: each sentence's tokens joined by spaces)."""
    if recipe.task == "ner":
        import datasets

        from ftkit.data import tagged

        sents = tagged.load(recipe.data.train, recipe.data, "data.train")
        return datasets.Dataset.from_dict({recipe.data.text_column: [" ".join(t) for t in sents.tokens]})
    train_ds, _ = sources.train_and_validation(recipe.data, recipe.train.seed)
    return train_ds


def obtain_tokenizer(recipe: Recipe, log=print, train_ds=None):
    """Load the recipe's tokenizer; train and save it first when `tokenizer.kind` is set and it does not exist yet."""
    cfg = recipe.tokenizer
    if cfg is None:
        return load_tokenizer(recipe.model.from_pretrained, recipe.model.trust_remote_code, "model.from_pretrained")
    if cfg.kind is None or Path(cfg.path).is_dir():
        if cfg.kind is not None:
            check_settings(recipe)
        return load_tokenizer(cfg.path, recipe.model.trust_remote_code)
    log(f"tokenizer {cfg.path} does not exist yet: training a {cfg.kind} tokenizer")
    if train_ds is None:
        train_ds = training_corpus(recipe)
    sources.require_column(train_ds, recipe.data.text_column, "data.text_column", "data.train")
    tok, _ = train_from_recipe(recipe, train_ds)
    save_tokenizer(tok, cfg.path)
    write_settings(recipe)
    return load_tokenizer(cfg.path)


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
    tok, _ = train_from_recipe(recipe, train_ds)
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
    if encode:
        from ftkit.data.lm_blocks import cached_blocks

        cached_blocks(recipe, tok, log)
    return stats
