"""Where micro-batches come from, and how a run knows its place in the data.

Written by hand rather than with a DataLoader + sampler because resume must be exact and
cheap: the order of epoch `e` is a pure function of (seed, e), and each batch's collate
randomness (MLM masking, NSP pairing) is seeded from its position, so a resumed run jumps
straight to batch `i` of epoch `e` without reading or re-masking the batches before it.
Each rank takes every `world`-th batch of the global order: shards never overlap and
together cover the data.

Per-example randomness: the `rng` a collate gets is a BatchRng, which also holds one generator per example,
seeded by (seed, epoch, the example's index in the items). A task that draws each example's random choices
(masks, pairings, crops) from its own generator (`example_rngs(rng, n)`) collates the same examples the same
way however they are cut into batches: N processes at the same global batch train as 1 process does.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

Collate = Callable[[list, np.random.Generator], dict]
# stream tags of the seeds below: the generators of training and evaluation examples never coincide
TRAIN_EXAMPLE, EVAL_EXAMPLE, STREAM_EXAMPLE = 23, 29, 31


class BatchRng(np.random.Generator):
    """A batch's random generator (seeded by its position, draws per batch) that also holds one generator per example
    of the batch, each seeded by its own key: see example_rngs."""

    def __init__(self, batch_key: Sequence[int], example_keys: Sequence[Sequence[int]]):
        super().__init__(np.random.PCG64(np.random.SeedSequence(list(batch_key))))
        self._keys, self._examples = example_keys, None

    def examples(self) -> list[np.random.Generator]:
        """One generator per example, created on first use (tasks without randomness never pay for them); the same
        list on every call, so a collate may draw from an example's generator in several places."""
        if self._examples is None:
            self._examples = [np.random.default_rng(list(k)) for k in self._keys]
        return self._examples


def example_rngs(rng, n: int) -> list[np.random.Generator]:
    """One generator per example of a batch of `n`: the engine's (a BatchRng: seeded by seed, epoch and the example's
    index, so the draws do not depend on the batch or rank the example lands in), a list already split, or, from a
    plain Generator (tests, reports), `n` children spawned from it (deterministic given the generator)."""
    if isinstance(rng, BatchRng):
        out = rng.examples()
    elif isinstance(rng, (list, tuple)):
        out = list(rng)
    else:
        out = rng.spawn(n)
    if len(out) != n:
        raise ValueError(f"{len(out)} example generators for a batch of {n}")
    return out


class EpochBatches:
    """Map-style data: shuffled per epoch, sharded across ranks, resumable by position."""

    def __init__(self, items: Sequence, batch_size: int, collate: Collate, seed: int,
                 rank: int = 0, world: int = 1, shuffle: bool = True, drop_last: bool = True,
                 order: Optional[Callable[[np.random.Generator, int], np.ndarray]] = None):
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
            # the global batch (all ranks): a length group is cut as one rank would cut it, so 2 ranks at the same
            # global batch train on the same batches as 1 (grouped per rank, they saw other ones)
            return self.order(rng, self.batch_size * self.world)
        return rng.permutation(len(self.items)) if self.shuffle else np.arange(len(self.items))

    def __iter__(self) -> Iterator[dict]:
        while True:
            perm = self._permutation(self.epoch)
            while self.index < self.batches_per_epoch:
                start = (self.index * self.world + self.rank) * self.batch_size
                idx = perm[start:start + self.batch_size]
                rng = BatchRng([self.seed, self.epoch, self.index, self.rank, 7],
                               [(self.seed, self.epoch, int(i), TRAIN_EXAMPLE) for i in idx])
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
                # a stream is split by rank, so its examples have no global index: keyed by (rank, batch, position)
                rng = BatchRng([self.seed, self.count, self.rank, 7],
                               [(self.seed, self.rank, self.count, k, STREAM_EXAMPLE) for k in range(len(buf))])
                batch = self.collate(buf, rng)
                buf = []
                self.count += 1
                yield batch

    def state_dict(self) -> dict:
        return {"count": self.count, "source": self.source.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self._pending_state = state


def length_grouped_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, mega: int = 50) -> np.ndarray:
    """A shuffled order in which each run of `batch_size` items has similar lengths (little padding).

    As transformers' LengthGroupedSampler: shuffle, cut into mega-batches of `mega` batches, sort each
    by length; then shuffle the batches too, so lengths do not follow a pattern within an epoch. Full
    batches come first and the short remainder last, where `drop_last` drops it. All randomness comes
    from `rng` (seeded by the epoch), so the order is reproducible and resume stays exact.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    perm = rng.permutation(n)
    size = batch_size * mega
    grouped = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in np.array_split(perm, range(size, n, size))])
    full = n - n % batch_size
    batches = grouped[:full].reshape(-1, batch_size) if full else np.zeros((0, batch_size), dtype=grouped.dtype)
    return np.concatenate([batches[rng.permutation(len(batches))].reshape(-1), grouped[full:]])


def length_grouped(items: Sequence) -> Callable[[np.random.Generator, int], np.ndarray]:
    """EpochBatches' `order` for items of different lengths: length_grouped_order over their input_ids, in groups of
    the global batch it is given."""
    lengths = np.array([len(it["input_ids"]) for it in items])
    return lambda rng, batch_size: length_grouped_order(lengths, batch_size, rng)


def by_length(items: Sequence) -> list:
    """Evaluation order: by length, so eval batches need almost no padding (metrics do not depend on order)."""
    return sorted(items, key=lambda it: len(it["input_ids"]))


def eval_subset(n_items: int, batch_size: int, limit: Optional[int], seed: int,
                strata: Optional[Sequence] = None) -> Optional[np.ndarray]:
    """Which items `limit` evaluation batches score: None for all, else a seeded sample in the items' order.

    A limit must not score the first items: callers sort evaluation items by length (for padding), so
    the first batches would be the shortest examples (on SMS Spam: all `ham`). The sample is stratified
    when `strata` (e.g. the class of each item) is given: each class gets its share of the sample
    (largest remainders), so a 10-batch sample has the classes in the proportions of the whole set.
    """
    size = None if limit is None else limit * batch_size
    if size is None or size >= n_items:
        return None
    rng = np.random.default_rng([seed, 13])
    if strata is None:
        return np.sort(rng.choice(n_items, size, replace=False))
    strata = np.asarray(strata)
    classes, counts = np.unique(strata, return_counts=True)
    quota = counts * size / n_items
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[:size - take.sum()]:
        take[i] += 1
    chosen = [rng.choice(np.flatnonzero(strata == c), k, replace=False) for c, k in zip(classes, take) if k]
    return np.sort(np.concatenate(chosen))


def item_strata(items: Sequence) -> Optional[list]:
    """The class of each item, when items are labelled examples (a `labels` int); else None."""
    strata = getattr(items, "strata", None)  # lazily decoded items (images) know their classes without decoding
    if strata is not None:
        return strata
    if len(items) and isinstance(items[0], dict) and np.ndim(items[0].get("labels", [])) == 0:
        return [it["labels"] for it in items]
    return None


class eval_batches:
    """Deterministic evaluation batches: fixed order, collate seeded by position (same masks every time); each
    example's generator is seeded by (seed, its index in the items), so masks do not depend on the batch size or
    the number of processes.

    With `limit`, the batches hold a seeded (stratified, for labelled items) sample of `limit` batches'
    worth of items, not the first ones (see eval_subset); `sample` says which ({size, of, seed}, for logs
    and metrics; None when all items are scored). Sized (this rank's batches), for progress; iterable
    again and again, so one instance serves every evaluation of a run."""

    def __init__(self, items: Sequence, batch_size: int, collate: Collate, seed: int, rank: int = 0,
                 world: int = 1, limit: Optional[int] = None):
        subset = eval_subset(len(items), batch_size, limit, seed, item_strata(items))
        self.items = items if subset is None else [items[int(i)] for i in subset]
        self.sample = None if subset is None else {"size": len(subset), "of": len(items), "seed": seed}
        self.batch_size, self.collate, self.seed, self.rank, self.world = batch_size, collate, seed, rank, world
        self.n = math.ceil(len(self.items) / batch_size)

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))

    def __iter__(self) -> Iterator[dict]:
        bs, items = self.batch_size, self.items
        for b in range(self.rank, self.n, self.world):
            where = range(b * bs, min(len(items), (b + 1) * bs))
            yield self.collate([items[i] for i in where], BatchRng([self.seed, b, 11], [(self.seed, i, EVAL_EXAMPLE) for i in where]))


def log_sample(note, what: str, log):
    """Say (once) that a limited evaluation scores a seeded sample, and of how many; returns the note."""
    if note:
        log(f"{what}: scoring a seeded random sample of {note['size']:,} of {note['of']:,} examples "
            f"(seed {note['seed']}; labelled examples: classes in proportion)")
    return note
