"""data/splits.py: one validation split for every family (split_mode, seed, the empty-train guard)."""

import numpy as np
import pytest

from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.ner import data as tagged
from ftkit.tasks.ner.section import NerSection
from ftkit.tasks.qa import data as qa_data
from ftkit.tasks.qa.section import QaSection


def data(**kw) -> DataSection:
    return DataSection(**{"train": "-", **kw})


def test_random_is_seeded_sorted_and_disjoint():
    tr, va = held_out(100, data(validation_split=0.2), seed=3)
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va) and set(tr) | set(va) == set(range(100))
    assert list(va) == sorted(va) and list(tr) == sorted(tr)
    again, other = held_out(100, data(validation_split=0.2), seed=3), held_out(100, data(validation_split=0.2), seed=4)
    assert np.array_equal(again[1], va) and not np.array_equal(other[1], va)


def test_drawn_order_is_datasets_train_test_split():
    """Language-model corpora keep the rows in the order datasets' own split gives (runs reproduce across versions)."""
    import datasets

    ds = datasets.Dataset.from_dict({"i": list(range(50))})
    parts = ds.train_test_split(test_size=10, seed=7, shuffle=True)
    tr, va = held_out(50, data(validation_split=0.2), seed=7, drawn_order=True)
    assert list(tr) == parts["train"]["i"] and list(va) == parts["test"]["i"]


def test_tail_holds_out_the_last_share_in_file_order():
    tr, va = held_out(10, data(validation_split=0.3, split_mode="tail"), seed=0)
    assert list(va) == [7, 8, 9] and list(tr) == list(range(7))


def test_labels_stratify_where_every_class_fits():
    labels = ["a"] * 80 + ["b"] * 20
    _, va = held_out(100, data(validation_split=0.1), seed=0, labels=labels)
    assert sorted(labels[i] for i in va) == ["a"] * 8 + ["b"] * 2


def test_nothing_held_out_and_the_guard():
    assert held_out(10, data(), seed=0) is None
    assert held_out(10, data(validation="v.txt", validation_split=0.5), seed=0) is None
    with pytest.raises(UserError, match=r"data.validation_split=0.9 leaves no training sentences \(1 sentences\)"):
        held_out(1, data(validation_split=0.9), seed=0, unit="sentences")


def test_ner_and_qa_honour_tail_and_the_guard(tmp_path):
    """Before data/splits.py, ner and qa ignored split_mode: tail and had no empty-train guard."""
    conll = tmp_path / "t.conll"
    conll.write_text("".join(f"w{i} O\n\n" for i in range(10)))
    train, val = tagged.train_and_validation(data(train=str(conll), validation_split=0.2, split_mode="tail"), NerSection(), 0)
    assert [s[0] for s in val.tokens] == ["w8", "w9"] and len(train) == 8
    one = tmp_path / "one.conll"
    one.write_text("w O\n")
    with pytest.raises(UserError, match="leaves no training sentences"):
        tagged.train_and_validation(data(train=str(one), validation_split=0.5), NerSection(), 0)
    rows = tmp_path / "q.jsonl"
    rows.write_text("".join('{"id": "%d", "question": "q?", "context": "c %d", "answers": {"text": ["c"], "answer_start": [0]}}\n'
                            % (i, i) for i in range(5)))
    train, val = qa_data.train_and_validation(data(train=str(rows), validation_split=0.4, split_mode="tail"), QaSection(), 0)
    assert [e.context for e in val.items] == ["c 3", "c 4"] and len(train) == 3
