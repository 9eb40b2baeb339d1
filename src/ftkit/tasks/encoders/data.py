"""Training and validation items of the masked-LM tasks, as the recipe describes them.

- mlm: packed blocks of block_size - 2 tokens from the token-stream cache (the collate adds [CLS] and [SEP]);
- mlm+nsp: sentence-pair items from the documents' sentences (tasks/encoders/documents.py, tasks/encoders/pairs.py).
"""

from __future__ import annotations

from typing import Optional

from ftkit.data import lm_blocks, sources
from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe
from ftkit.tasks.encoders import documents
from ftkit.tasks.encoders.pairs import PairItems


def block_recipe(recipe: Recipe) -> Recipe:
    """The recipe with data.block_size minus the two special tokens each block gets (the stream cache is shared)."""
    if recipe.data.block_size < 3:
        raise UserError(f"data.block_size: {recipe.data.block_size} leaves no room for tokens between [CLS] and [SEP]")
    return recipe.model_copy(update={"data": recipe.data.model_copy(update={"block_size": recipe.data.block_size - 2})})


def mlm_blocks(recipe: Recipe, tokenizer, log=print):
    """(train blocks or None when streaming, validation blocks or None)."""
    return lm_blocks.cached_blocks(block_recipe(recipe), tokenizer, log)


def pair_items(recipe: Recipe, tokenizer, log=print, want_train: bool = True) -> tuple[Optional[PairItems], Optional[PairItems]]:
    """(train items, validation items or None) for mlm+nsp; documents are read only on a cache miss."""
    d = recipe.data
    if d.streaming:
        raise UserError("data.streaming: mlm+nsp builds pairs from whole documents and cannot stream; "
                        "set data.streaming: false (or use task mlm)")
    loaded: dict = {}

    def split(name: str):
        if "pair" not in loaded:
            loaded["pair"] = sources.train_and_validation(d, recipe.train.seed)
            for key, ds in zip(("data.train", "data.validation"), loaded["pair"]):
                if ds is not None:
                    sources.require_column(ds, d.text_column, "data.text_column", key)
        return loaded["pair"][0 if name == "train" else 1]

    max_tokens = d.block_size - 3  # [CLS] A [SEP] B [SEP]
    train = val = None
    if want_train:
        corpus = documents.cached_corpus(recipe, tokenizer, "train", lambda: split("train"), log)
        train = PairItems(corpus, max_tokens, f"data.train ({sources.describe(d.train)})")
        log(f"train: {train.describe()}")
    if d.validation is not None or d.validation_split > 0:
        corpus = documents.cached_corpus(recipe, tokenizer, "validation", lambda: split("validation"), log)
        where = f"data.validation ({sources.describe(d.validation)})" if d.validation is not None else "data.validation_split"
        val = PairItems(corpus, max_tokens, where)
        log(f"validation: {val.describe()}")
    return train, val
