"""Limited evaluation (train.eval_batches, eval/compress --max-batches) scores a seeded, stratified sample,
not the first (= shortest, after sorting by length) examples."""

from collections import Counter

import numpy as np
import torch

from ftkit.engine.batches import eval_batches, eval_subset


def collate(examples, rng):
    return {"labels": torch.tensor([e["labels"] for e in examples]), "idx": torch.tensor([e["idx"] for e in examples])}


def sorted_items():
    """As SMS Spam sorted by length: the 300 shortest are all class 0, then 60 of class 1 among 240 more."""
    labels = [0] * 300 + [1 if i % 4 == 0 else 0 for i in range(240)]
    return [{"labels": y, "idx": i, "input_ids": [1] * (i + 1)} for i, y in enumerate(labels)]


def test_limited_eval_is_a_stratified_sample_not_the_shortest_items():
    items = sorted_items()
    batches = list(eval_batches(items, 8, collate, seed=5, limit=5))
    labels = torch.cat([b["labels"] for b in batches]).tolist()
    idx = torch.cat([b["idx"] for b in batches]).tolist()
    assert len(labels) == 40
    # 60 of 540 items are class 1: 40 * 60/540 = 4.44 -> 4 of class 1, exactly in proportion
    assert Counter(labels) == {0: 36, 1: 4}
    assert idx == sorted(idx) and max(idx) > 300          # the items' own (length) order, from all over the set
    again = torch.cat([b["idx"] for b in eval_batches(items, 8, collate, seed=5, limit=5)]).tolist()
    other = torch.cat([b["idx"] for b in eval_batches(items, 8, collate, seed=6, limit=5)]).tolist()
    assert again == idx and other != idx                  # fixed by the seed


def test_largest_remainder_quotas_and_unlabelled_items():
    strata = np.array([0] * 50 + [1] * 30 + [2] * 20)
    pick = eval_subset(100, 10, 1, seed=0, strata=strata)
    assert Counter(strata[pick].tolist()) == {0: 5, 1: 3, 2: 2}
    pick = eval_subset(100, 7, 1, seed=0, strata=strata)  # 3.5 / 2.1 / 1.4 -> 4 / 2 / 1
    assert Counter(strata[pick].tolist()) == {0: 4, 1: 2, 2: 1}
    blocks = [np.arange(4) + i for i in range(100)]        # LM blocks: no labels, a plain seeded sample
    got = [int(b["x"][0, 0]) for b in eval_batches(blocks, 4, lambda ex, rng: {"x": torch.tensor(np.stack(ex))}, 3, limit=2)]
    assert got != [0, 4] and len(got) == 2


def test_no_limit_or_a_limit_past_the_end_scores_everything():
    items = sorted_items()
    assert eval_subset(len(items), 8, None, 0) is None and eval_subset(len(items), 8, 100, 0) is None
    assert sum(len(b["idx"]) for b in eval_batches(items, 8, collate, 0, limit=100)) == len(items)
    assert eval_batches(items, 8, collate, 7, limit=5).sample == {"size": 40, "of": 540, "seed": 7}
    assert eval_batches(items, 8, collate, 7).sample is None and eval_batches(items, 8, collate, 7, limit=100).sample is None
    once = eval_batches(items, 8, collate, 7, limit=5)  # one instance serves every evaluation of a run
    assert [b["idx"].tolist() for b in once] == [b["idx"].tolist() for b in once]
