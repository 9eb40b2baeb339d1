"""Where micro-batches come from, and how a run knows its place in the data.

Written by hand rather than with a DataLoader + sampler because resume must be exact and
cheap: the order of epoch `e` is a pure function of (seed, e), and each batch's collate
randomness (MLM masking, NSP pairing) is seeded from its position, so a resumed run jumps
straight to batch `i` of epoch `e` without reading or re-masking the batches before it.
Each rank takes every `world`-th batch of the global order: shards never overlap and
together cover the data.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

Collate = Callable[[list, np.random.Generator], dict]


class EpochBatches:
    """Map-style data: shuffled per epoch, sharded across ranks, resumable by position."""

    def __init__(self, items: Sequence, batch_size: int, collate: Collate, seed: int,
                 rank: int = 0, world: int = 1, shuffle: bool = True, drop_last: bool = True,
                 order: Optional[Callable[[np.random.Generator], np.ndarray]] = None):
        self.items, self.batch_size, self.collate = items, batch_size, collate
        self.seed, self.rank, self.world = seed, rank, world
        self.shuffle, self.drop_last, self.order = shuffle, drop_last, order
        self.epoch, self.index = 0, 0  # next batch to yield: global batch `index` of `epoch`
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(items)} examples give no full batch of {batch_size} x {world} processes")

    @property
    def batches_per_epoch(self) -> int:
        """Batches each rank gets per epoch."""
        per_step = self.batch_size * self.world
        n = len(self.items) // per_step if self.drop_last else math.ceil(len(self.items) / per_step)
        return n

    def _permutation(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        if self.order is not None:
            return self.order(rng)
        return rng.permutation(len(self.items)) if self.shuffle else np.arange(len(self.items))

    def __iter__(self) -> Iterator[dict]:
        while True:
            perm = self._permutation(self.epoch)
            while self.index < self.batches_per_epoch:
                start = (self.index * self.world + self.rank) * self.batch_size
                idx = perm[start:start + self.batch_size]
                rng = np.random.default_rng([self.seed, self.epoch, self.index, self.rank, 7])
                batch = self.collate([self.items[int(i)] for i in idx], rng)
                self.index += 1
                yield batch
            self.epoch, self.index = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


class StreamBatches:
    """Streaming data: an iterable of examples, resumable through the source's own state.

    `source` is a datasets IterableDataset (state_dict/load_state_dict) already split by node.
    """

    def __init__(self, source: Any, batch_size: int, collate: Collate, seed: int, rank: int = 0):
        self.source, self.batch_size, self.collate = source, batch_size, collate
        self.seed, self.rank = seed, rank
        self.count = 0
        self._pending_state: Optional[dict] = None

    batches_per_epoch = None

    def __iter__(self) -> Iterator[dict]:
        if self._pending_state is not None:
            self.source.load_state_dict(self._pending_state["source"])
            self._pending_state = None
        buf: list = []
        for example in self.source:
            buf.append(example)
            if len(buf) == self.batch_size:
                rng = np.random.default_rng([self.seed, self.count, self.rank, 7])
                batch = self.collate(buf, rng)
                buf = []
                self.count += 1
                yield batch

    def state_dict(self) -> dict:
        return {"count": self.count, "source": self.source.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self._pending_state = state


def eval_batches(items: Sequence, batch_size: int, collate: Collate, seed: int, rank: int = 0,
                 world: int = 1, limit: Optional[int] = None) -> Iterator[dict]:
    """Deterministic evaluation batches: fixed order, collate seeded by position (same masks every time)."""
    n = math.ceil(len(items) / batch_size)
    if limit is not None:
        n = min(n, limit)
    for b in range(rank, n, world):
        chunk = [items[i] for i in range(b * batch_size, min(len(items), (b + 1) * batch_size))]
        yield collate(chunk, np.random.default_rng([seed, b, 11]))
