"""The family base's template (tasks/family.py): the shared sequence of prepare and evaluation, pinned with a family
of plain lists (no model, no tokenizer), so a change of order or of the sampling rules fails here first."""

from __future__ import annotations

import numpy as np
import pytest

from ftkit.errors import UserError
from ftkit.recipe.schema import Recipe
from ftkit.tasks.family import Encoded, Family
from ftkit.tasks.spec import EvalRequest


class _Task:
    name = "toy"
    metrics = {"accuracy": True, "loss": False}


class Lists(Family[list]):
    """Rows are words; an item is {"input_ids": one id per letter}."""

    def __init__(self):
        self.calls: list[str] = []

    def read(self, source, recipe, key, log):
        self.calls.append(f"read {key}")
        return source.split()

    def split(self, run):
        self.calls.append("split")
        return ["aaaa", "b", "ccc"], ["dd", "e", "ffffff", "gggg"]

    def subset(self, rows, positions):
        return [rows[i] for i in positions]

    def build(self, run):
        self.calls.append("build")
        return "model", {"head": True}

    def recognise(self, run):
        self.calls.append("recognise")
        return {"head": True}

    def make_task(self, run, gold):
        self.calls.append(f"task {len(gold) if gold is not None else None}")
        return _Task()

    def encode(self, run, rows, part):
        self.calls.append(f"encode {part} {' '.join(rows)}")
        return Encoded([{"input_ids": [1] * len(w), "word": w} for w in rows], f"{part}: {len(rows)} words",
                       {"words": len(rows)} if part != "validation" else {})

    def ready(self, run):
        self.calls.append("ready")

    def describe(self, run):
        return ("toy | done",)


def _recipe(**train) -> Recipe:
    return Recipe.model_validate({"task": "cls", "output_dir": "unused", "data": {"train": "unused"}, "model": {"from_pretrained": "unused"},
                                  "train": {"seed": 3, **train}})


def test_prepare_runs_the_shared_sequence_in_order():
    fam, lines = Lists(), []
    prep = fam.prepare(_recipe(), "tok", None, lines.append)
    assert fam.calls == ["split", "build", "task 4", "encode train aaaa b ccc", "encode validation dd e ffffff gggg", "ready"]
    assert lines == ["train: 3 words", "validation: 4 words", "toy | done"]
    assert [it["word"] for it in prep.train_items] == ["aaaa", "b", "ccc"]  # training items as encoded
    assert [it["word"] for it in prep.val_items] == ["e", "dd", "gggg", "ffffff"]  # validation shortest first
    assert prep.summary == {"words": 3} and prep.eval_seed == 3 and prep.preprocessor == "tok"
    order = prep.order(np.random.default_rng(0), 2)  # length-grouped over the training items
    assert sorted(order.tolist()) == [0, 1, 2]


def test_a_misspelt_metric_fails_before_anything_is_encoded():
    fam = Lists()
    with pytest.raises(UserError, match="train.metric_for_best: 'acc' is not a metric of task toy"):
        fam.prepare(_recipe(metric_for_best="acc"), "tok", None, print)
    assert not any(c.startswith("encode") for c in fam.calls)


def _request(data=None, sample=None, split="validation") -> EvalRequest:
    return EvalRequest("m", "m", _recipe(), data, "model", "tok", log=lambda s: None, split=split, sample=sample)


def test_evaluation_reads_data_then_encodes_shortest_first():
    fam = Lists()
    setup = fam.evaluation(_request(data="xxx y zz"))
    assert fam.calls == ["recognise", "read --data", "task 3", "encode data xxx y zz", "ready"]
    assert [it["word"] for it in setup.items] == ["y", "zz", "xxx"]
    assert setup.extras == {"words": 3} and setup.seed == 0


def test_evaluation_of_the_training_file_and_of_the_validation_split():
    fam = Lists()
    fam.evaluation(_request(split="train"))
    assert fam.calls[1] == "read data.train"
    fam.calls.clear()
    setup = fam.evaluation(_request())
    assert fam.calls[1] == "split" and [it["word"] for it in setup.items] == ["e", "dd", "gggg", "ffffff"]


def test_a_sample_is_drawn_before_encoding_and_keeps_its_order():
    fam = Lists()
    setup = fam.evaluation(_request(sample=2))
    encoded = [c for c in fam.calls if c.startswith("encode")]
    assert len(encoded) == 1 and len(encoded[0].split()) == 4  # "encode data W W": only the 2 drawn words
    drawn = encoded[0].split()[2:]
    assert [it["word"] for it in setup.items] == drawn  # as drawn (sample_positions sorts them), not by length
    again = Lists()
    again.evaluation(_request(sample=2))
    assert [c for c in again.calls if c.startswith("encode")] == encoded  # seeded
