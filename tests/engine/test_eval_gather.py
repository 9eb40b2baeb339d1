"""Evaluation accumulators of N ranks combine into what 1 process computes: sums added, per-example sequences
(numbers, texts, records) in the global batch order (engine/loop.combine_ranks)."""

import numpy as np
import pytest

from ftkit.engine.batches import eval_batches
from ftkit.engine.loop import combine_ranks


def _accumulate(batches):
    """What one rank's evaluate keeps: a sum, and per batch the example ids, texts and records."""
    sums, per_batch = {"n": 0.0}, []
    for batch in batches:
        sums["n"] += len(batch)
        per_batch.append({"ids": [x for x in batch], "texts": [f"t{x}" for x in batch],
                          "records": [{"id": x, "spans": [[x, x + 1]] * (x % 3)} for x in batch]})
    return {"sums": sums, "batches": per_batch}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("n_items", [7, 8, 1])
def test_n_ranks_combine_to_one_process(world, n_items):
    items = list(range(n_items))
    collate = lambda xs, rng: xs  # noqa: E731
    one = combine_ranks([_accumulate(eval_batches(items, 2, collate, 0))])
    many = combine_ranks([_accumulate(eval_batches(items, 2, collate, 0, rank=r, world=world)) for r in range(world)])
    assert one["n"] == many["n"] == n_items
    assert isinstance(many["ids"], np.ndarray) and many["ids"].tolist() == items == one["ids"].tolist()
    assert many["texts"] == one["texts"] == [f"t{i}" for i in items]  # texts stay strings, in order
    assert many["records"] == one["records"]  # ragged records stay a list
