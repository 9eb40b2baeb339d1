"""The recipe's tokenizer: loaded, or trained and saved first (tokenizer.kind set, tokenizer.path not there yet).

What it was trained with is recorded next to it (ftkit_tokenizer.json), so that a later recipe asking for
another tokenizer at the same path is told, not silently given this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ftkit.data import sources
from ftkit.data.tokenizer import load_tokenizer, save_tokenizer, train_from_recipe
from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry
from ftkit.wording import with_article

SETTINGS_FILE = "ftkit_tokenizer.json"
SETTINGS_KEYS = ("kind", "vocab_size", "min_frequency", "lowercase", "max_train_bytes", "extra_ids")


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


def default_corpus(recipe: Recipe):
    """data.train as rows of text."""
    train_ds, _ = sources.train_and_validation(recipe.data, recipe.train.seed)
    return train_ds


def obtain_tokenizer(recipe: Recipe, entry: TaskEntry, log=print, corpus: Optional[Callable] = None):
    """Load the recipe's tokenizer; train and save it first (with the special tokens of `entry`'s models) when
    `tokenizer.kind` is set and it does not exist yet."""
    cfg = recipe.tokenizer
    if cfg is None:
        return load_tokenizer(recipe.model.from_pretrained, recipe.model.trust_remote_code, "model.from_pretrained")
    if cfg.kind is None or Path(cfg.path).is_dir():
        if cfg.kind is not None:
            check_settings(recipe)
        return load_tokenizer(cfg.path, recipe.model.trust_remote_code)
    log(f"tokenizer {cfg.path} does not exist yet: training {with_article(cfg.kind)} tokenizer")
    train_ds = (corpus or default_corpus)(recipe)
    sources.require_column(train_ds, recipe.data.text_column, "data.text_column", "data.train")
    tok, _ = train_from_recipe(recipe, entry, train_ds)
    save_tokenizer(tok, cfg.path)
    write_settings(recipe)
    return load_tokenizer(cfg.path)
