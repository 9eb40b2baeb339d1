"""Language-model data: packed fixed-length token blocks, from the on-disk cache or from a stream."""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from ftkit.data import sources, token_cache
from ftkit.recipe.schema import Recipe


def cached_blocks(recipe: Recipe, tokenizer, log=print) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(train blocks or None when streaming, validation blocks or None): token streams cut into blocks.

    Both splits come from the cache when it holds them; the datasets are only read on a miss.
    """
    loaded: dict = {}

    def split(name: str, r: Recipe = recipe):
        if "pair" not in loaded:
            loaded["pair"] = sources.train_and_validation(r.data, r.train.seed)
            for key, ds in zip(("data.train", "data.validation"), loaded["pair"]):
                if ds is not None:
                    sources.require_column(ds, recipe.data.text_column, "data.text_column", key)
        return loaded["pair"][0 if name == "train" else 1]

    d = recipe.data
    if d.split_mode == "tail" and d.validation is None and d.validation_split > 0 and not d.streaming:
        # nanoGPT's split: the last fraction of the token stream (for a char tokenizer: of the characters).
        whole = recipe.model_copy(update={"data": d.model_copy(update={"validation_split": 0.0})})
        stream = token_cache.cached_stream(whole, tokenizer, "train", lambda: split("train", whole), log)
        cut = int(len(stream) * (1 - d.validation_split))
        return (token_cache.blocks(stream[:cut], d.block_size, "train"),
                token_cache.blocks(stream[cut:], d.block_size, "validation"))
    train = None
    if not recipe.data.streaming:
        stream = token_cache.cached_stream(recipe, tokenizer, "train", lambda: split("train"), log)
        train = token_cache.blocks(stream, recipe.data.block_size, "train")
    val = None
    if recipe.data.validation is not None or (recipe.data.validation_split > 0 and not recipe.data.streaming):
        vstream = token_cache.cached_stream(recipe, tokenizer, "validation", lambda: split("validation"), log)
        val = token_cache.blocks(vstream, recipe.data.block_size, "validation")
    return train, val


class PackedStream:
    """Stream text rows -> token blocks, resumable: state = the source's position + the tokens left over.

    The source is a datasets IterableDataset (already shuffled and split by node); its
    `state_dict()` is taken right after each chunk is read, so a resumed stream continues
    with the first block not yet trained on, without re-reading the stream from the start.
    """

    def __init__(self, source, tokenizer, column: str, block_size: int, add_eos: bool, chunk: int = 256):
        self.source, self.tokenizer, self.column = source, tokenizer, column
        self.block_size, self.add_eos, self.chunk = block_size, add_eos, chunk
        self._state = {"source": None, "buffer": []}

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._state["source"] is not None:
            self.source.load_state_dict(self._state["source"])
        buf: list[int] = list(self._state["buffer"])
        rows: list[str] = []
        it, encoder = iter(self.source), token_cache.plain_encoder(self.tokenizer)
        while True:
            row = next(it, None)
            if row is not None:
                text = row[self.column]
                if isinstance(text, str) and text:
                    rows.append(text)
                if len(rows) < self.chunk:
                    continue
            if rows:
                for ids in token_cache.encode_texts(self.tokenizer, rows, self.add_eos, encoder):
                    buf.extend(ids)
                rows = []
            source_state = self.source.state_dict()
            while len(buf) >= self.block_size:
                block, buf = buf[: self.block_size], buf[self.block_size:]
                self._state = {"source": source_state, "buffer": buf}
                yield np.asarray(block, dtype=np.int64)
            if row is None:
                return

    def state_dict(self) -> dict:
        return self._state

    def load_state_dict(self, state: dict) -> None:
        self._state = state


def streamed_blocks(recipe: Recipe, tokenizer, rank: int, world: int) -> PackedStream:
    from datasets.distributed import split_dataset_by_node

    ds = sources.load_split(recipe.data.train, recipe.data, "data.train", streaming=True)
    sources.require_column(ds, recipe.data.text_column, "data.text_column", "data.train")
    ds = ds.shuffle(seed=recipe.train.seed, buffer_size=recipe.data.shuffle_buffer)
    if world > 1:
        ds = split_dataset_by_node(ds, rank=rank, world_size=world)
    return PackedStream(ds, tokenizer, recipe.data.text_column, recipe.data.block_size, recipe.data.add_eos)
