"""Per-example randomness (engine/batches.BatchRng, example_rngs): every random choice of the masked tasks' collates
(masks, NSP pairs, ELECTRA's samples, MIM masks, image crops and flips) is a function of (seed, epoch, example), so a
global batch cut into 2 ranks' batches collates to the rows 1 rank's batch holds, and the mask statistics stay those
of BERT (15 % selected, 80/10/10)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ftkit.engine.batches import EpochBatches, eval_batches
from ftkit.tasks.encoders.documents import SentenceCorpus
from ftkit.tasks.encoders.electra import ElectraTask
from ftkit.tasks.encoders.electra_pair import gumbel_uniforms
from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.mlm import MaskedLM
from ftkit.tasks.encoders.nsp import MaskedLMWithNSP
from ftkit.tasks.encoders.pairs import PairItems
from ftkit.tasks.encoders.section import ElectraSection, MaskingSection
from ftkit.tasks.vision.mim import MaskedImageModeling

from encoder_helpers import FakeTokenizer

GLOBAL = 8


def blocks(n: int = 64, width: int = 30, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(5, 300, size=width) for _ in range(n)]


def pair_items() -> PairItems:
    rng = np.random.default_rng(3)
    docs = [int(n) for n in rng.integers(2, 12, size=30)] + [1] * 10
    lens = rng.integers(2, 9, size=sum(docs))
    offsets = np.concatenate([[0], np.cumsum(lens)])
    corpus = SentenceCorpus(rng.integers(5, 300, size=offsets[-1]), offsets, np.concatenate([[0], np.cumsum(docs)]))
    return PairItems(corpus, max_tokens=40 - 3)


def images(n: int = 32) -> list[dict]:
    rng = np.random.default_rng(1)
    return [{"image": rng.integers(0, 256, size=(16, 16, 1), dtype=np.uint8)} for _ in range(n)]


def mim(mae: bool) -> MaskedImageModeling:
    config = SimpleNamespace(model_type="vit_mae" if mae else "vit", image_size=16, patch_size=4, num_channels=3)
    return MaskedImageModeling(config, [0.5], [0.25], 0.5, None if mae else 8, ops=["crop", "flip"], padding=2)


CASES = {
    "mlm": lambda: (MaskedLM(FakeTokenizer(), MaskingSection(probability=0.3)), blocks()),
    "mlm-50-25-25": lambda: (MaskedLM(FakeTokenizer(), MaskingSection(probability=0.3, mask_random_keep=[0.5, 0.25, 0.25])), blocks()),
    "mlm+nsp": lambda: (MaskedLMWithNSP(FakeTokenizer(), MaskingSection(probability=0.3)), pair_items()),
    "electra": lambda: (ElectraTask(FakeTokenizer(), MaskingSection(probability=0.3), ElectraSection()), blocks()),
    "mae": lambda: (mim(True), images()),
    "simmim": lambda: (mim(False), images()),
}


def rows(batch: dict) -> list[dict]:
    """A batch as its examples: each row's tensors, cut to the row's tokens (batches pad to their longest row)."""
    n = len(next(iter(batch.values())))
    out = []
    for r in range(n):
        keep = int(batch["attention_mask"][r].sum()) if "attention_mask" in batch else None
        out.append({k: (v[r][:keep] if v.ndim > 1 and keep is not None else v[r]) for k, v in batch.items()})
    return out


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_ranks_collate_the_rows_of_one(name):
    """2 ranks x 4 = 1 rank x 8, over two epochs (every global batch, train and evaluation collates)."""
    task, items = CASES[name]()
    one = EpochBatches(items, GLOBAL, task.collate, seed=5)
    two = [EpochBatches(items, GLOBAL // 2, task.collate, seed=5, rank=r, world=2) for r in range(2)]
    steps = 2 * one.batches_per_epoch
    it1, it2 = iter(one), [iter(b) for b in two]
    for _ in range(steps):
        whole = rows(next(it1))
        halves = rows(next(it2[0])) + rows(next(it2[1]))
        assert same(whole, halves), name
    ev1 = [r for b in eval_batches(items, GLOBAL, task.eval_collate, 3) for r in rows(b)]
    ev3 = [r for b in eval_batches(items, 3, task.eval_collate, 3) for r in rows(b)]  # another batch size too
    assert same(ev1, ev3)
    # the draws are random at all: another epoch (or seed) gives other masks
    first, second = rows(next(iter(EpochBatches(items, GLOBAL, task.collate, seed=5)))), rows(next(iter(EpochBatches(items, GLOBAL, task.collate, seed=6))))
    assert not same(first, second)


def test_resume_mid_epoch_collates_as_uninterrupted():
    task, items = CASES["mlm+nsp"]()
    a = EpochBatches(items, 4, task.collate, seed=1)
    ran = iter(a)
    seen = [rows(next(ran)) for _ in range(5)]
    b = EpochBatches(items, 4, task.collate, seed=1)
    b.load_state_dict({"epoch": 0, "index": 3})
    resumed = iter(b)
    assert same(rows(next(resumed)), seen[3]) and same(rows(next(resumed)), seen[4])


def test_gumbel_noise_of_a_sequence_does_not_depend_on_its_batch():
    counts, seeds = [3, 0, 5, 2], [11, 12, 13, 14]
    whole = gumbel_uniforms(counts, seeds, 7, "cpu")
    parts = torch.cat([gumbel_uniforms(counts[:2], seeds[:2], 7, "cpu"), gumbel_uniforms(counts[2:], seeds[2:], 7, "cpu")])
    assert whole.shape == (10, 7) and torch.equal(whole, parts)
    assert not torch.equal(whole[:3], gumbel_uniforms([3], [15], 7, "cpu"))


@pytest.mark.parametrize("probability, shares", [(0.15, (0.8, 0.1, 0.1)), (0.4, (0.5, 0.25, 0.25))])
def test_mask_statistics_through_the_engine(probability, shares):
    """The masks the engine's per-example generators draw: `probability` of the tokens selected (never [CLS] / [SEP]),
    of those `shares` masked / replaced / kept, measured on an epoch of 100k+ tokens."""
    task = MaskedLM(FakeTokenizer(), MaskingSection(probability=probability, mask_random_keep=list(shares)))
    data = blocks(n=1600, width=64, seed=2)
    inputs, labels, originals = [], [], []
    batches = iter(EpochBatches(data, 32, task.collate, seed=9))
    for _ in range(len(data) // 32):
        b = next(batches)
        inputs.append(b["input_ids"].numpy())
        labels.append(b["labels"].numpy())
    inputs, labels = np.concatenate(inputs), np.concatenate(labels)
    selected = labels != IGNORE
    assert not selected[:, [0, -1]].any()
    originals = np.where(selected, labels, inputs)
    candidates = selected.shape[0] * (selected.shape[1] - 2)
    assert candidates > 100_000
    assert abs(selected.sum() / candidates - probability) < 0.01
    n = selected.sum()
    got_mask = (inputs[selected] == 4).sum() / n
    got_kept = (inputs[selected] == originals[selected]).sum() / n  # a random draw of the original (1 in 295) is "kept"
    got_random = 1 - got_mask - got_kept
    assert np.allclose((got_mask, got_random, got_kept), shares, atol=0.02), (got_mask, got_random, got_kept)
