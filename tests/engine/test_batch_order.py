"""The batch order the engine draws: every batch its own randomness, length-grouped batches shuffled, resumable."""

import numpy as np
import torch

from ftkit.engine.batches import EpochBatches, length_grouped_order


def _draw(items, rng):
    return {"x": torch.tensor([int(rng.integers(1 << 30))]), "items": torch.tensor(items)}


def test_each_batch_draws_from_its_own_rng_and_resume_repeats_them():
    it = iter(EpochBatches(list(range(64)), 8, _draw, seed=3))
    draws = [int(next(it)["x"]) for _ in range(16)]  # two epochs of 8 batches
    assert len(set(draws)) == 16  # masks / NSP pairs differ from batch to batch and epoch to epoch
    resumed = EpochBatches(list(range(64)), 8, _draw, seed=3)
    resumed.load_state_dict({"epoch": 1, "index": 3})
    assert [int(b["x"]) for b, _ in zip(resumed, range(5))] == draws[11:16]


def test_epochs_are_reshuffled_and_cover_the_data():
    it = iter(EpochBatches(list(range(64)), 8, _draw, seed=3))
    e0 = np.concatenate([next(it)["items"].numpy() for _ in range(8)])
    e1 = np.concatenate([next(it)["items"].numpy() for _ in range(8)])
    assert sorted(e0) == sorted(e1) == list(range(64)) and not np.array_equal(e0, e1)


def test_length_grouped_batches_have_similar_lengths_and_come_in_random_order():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=400)
    order = length_grouped_order(lengths, 8, np.random.default_rng([1, 0]))
    assert sorted(order) == list(range(400))
    batches = lengths[order].reshape(-1, 8)
    spread = (batches.max(1) - batches.min(1)).mean()
    assert spread < 0.1 * (lengths.max() - lengths.min())  # little padding inside a batch
    longest = batches.max(1)
    # 50 batches are one mega-batch: sorted by length inside it, so only the batch-level shuffle breaks the descent
    assert not (np.all(np.diff(longest) <= 0) or np.all(np.diff(longest) >= 0))
    rank = np.argsort(np.argsort(-longest))  # 0: the batch of the longest items
    assert abs(np.corrcoef(rank, np.arange(len(rank)))[0, 1]) < 0.5  # no trend left over the epoch
    again = length_grouped_order(lengths, 8, np.random.default_rng([1, 0]))
    other = length_grouped_order(lengths, 8, np.random.default_rng([1, 1]))
    assert np.array_equal(order, again) and not np.array_equal(order, other)
