"""The validation split every family uses: which of the training items `data.validation_split` holds out.

One implementation, so `split_mode`, the seed and the guard mean the same for every task: `random`, a seeded sample
(stratified by class where labels are given, each class has two items and the sample can hold every class), or
`tail`, the last share in file order; a share that would leave no training item is an error. Positions come back
sorted, so both parts keep the files' order, unless `drawn_order` (language-model corpora: rows in the sampled
order, as `datasets.Dataset.train_test_split` gives them, which is the same permutation of the same seed). (Language models' `tail` cuts the token stream instead, nanoGPT's
split: data/lm_blocks.py.)"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Optional, Sequence

import numpy as np

from ftkit.errors import UserError


def held_out(n: int, data, seed: int, labels: Optional[Sequence] = None, unit: str = "rows",
             drawn_order: bool = False, groups: Optional[Sequence[str]] = None) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(training positions, validation positions) of `n` training items, or None when the recipe holds nothing out
    (it names data.validation, or validation_split is 0). `groups`: a key per item; items of one key stay on one
    side (dpo: the pairs of one prompt)."""
    if data.validation is not None or data.validation_split <= 0:
        return None
    if groups is not None:
        return _by_group(list(groups), data, seed, unit)
    n_val = max(1, int(round(n * data.validation_split)))
    if n_val >= n:
        raise UserError(f"data.validation_split={data.validation_split} leaves no training {unit} ({n} {unit})")
    if data.split_mode == "tail":
        return np.arange(n - n_val), np.arange(n - n_val, n)
    if labels is not None:  # sklearn's split, as run_glue's users know it; stratified where it can be
        from sklearn.model_selection import train_test_split

        counts = Counter(labels)
        strat = list(labels) if min(counts.values()) >= 2 and n_val >= len(counts) else None
        train, val = train_test_split(np.arange(n), test_size=n_val, random_state=seed, shuffle=True, stratify=strat)
        return np.sort(train), np.sort(val)
    perm = np.random.default_rng(seed).permutation(n)
    if drawn_order:
        return perm[n_val:], perm[:n_val]
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def group_held_out(key: str, share: float, seed: int) -> bool:
    """Whether a group is in the validation share (random mode): a hash of the seed and its key, so the decision does
    not depend on which other items the file holds."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _by_group(keys: list[str], data, seed: int, unit: str) -> tuple[np.ndarray, np.ndarray]:
    share = data.validation_split
    if data.split_mode == "tail":  # the last groups in file order, about the share of the groups
        order = list(dict.fromkeys(keys))
        val_groups = set(order[len(order) - max(1, int(round(len(order) * share))):])
    else:
        val_groups = {k for k in set(keys) if group_held_out(k, share, seed)}
    val = np.array([i for i, k in enumerate(keys) if k in val_groups], dtype=np.int64)
    train = np.array([i for i, k in enumerate(keys) if k not in val_groups], dtype=np.int64)
    if not len(train) or not len(val):
        raise UserError(f"data.validation_split={share} leaves {'no training' if not len(train) else 'no validation'} "
                        f"{unit} ({len(keys)} {unit}; the split keeps the {unit} of one group together)")
    return train, val
