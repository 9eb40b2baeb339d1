"""T5 span corruption without a model: the lengths (T5's own figures), the noise mask (density, span count, spans
spread over the text), corrupt/reassemble round trips (ids, and text through a trained tokenizer with sentinels),
the collate as a pure function of the batch's rng, the sentinels `ftkit tokenize` adds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ftkit.tasks.seq2seq.span_corruption import Plan, SpanCorruption, corrupt, noise_mask, reassemble, sentinel_ids

from conftest import DATA, need, run_cli, write_recipe

MULTI30K_EN = DATA / "multi30k" / "tok" / "train.lc.norm.tok.en"


@pytest.fixture(scope="module")
def t5_tokenizer(tmp_path_factory):
    """A unigram tokenizer with 20 sentinels trained by `ftkit tokenize` on 2,000 Multi30K English captions."""
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("span-tok")
    with open(need(MULTI30K_EN), encoding="utf-8") as f:
        (d / "en.txt").write_text("".join(next(f) for _ in range(2000)), encoding="utf-8")
    recipe = {"task": "span-corruption", "output_dir": str(d / "run"),
              "tokenizer": {"kind": "unigram", "path": str(d / "tok"), "vocab_size": 400, "extra_ids": 20},
              "model": {"model_type": "t5"}, "data": {"train": str(d / "en.txt"), "block_size": 64}}
    code, _, err = run_cli("tokenize", "-r", str(write_recipe(d / "r.yaml", recipe)))
    assert code == 0, err
    assert "<extra_id_0> = 419 down to <extra_id_19> = 400" in err
    return AutoTokenizer.from_pretrained(str(d / "tok")), d


def test_lengths_are_t5s():
    """T5 / run_t5_mlm_flax: inputs of 512 come from 568 text tokens, targets are 114 long."""
    p = Plan.fill(512, 0.15, 3.0)
    assert (p.text, p.inputs, p.targets, p.noise, p.spans) == (568, 512, 114, 85, 28)
    for length in (8, 31, 64, 100, 128, 257):  # no padding: the input is exactly data.block_size
        assert Plan.fill(length, 0.15, 3.0).inputs == length


def test_noise_mask_density_and_spans():
    plan = Plan.fill(128, 0.15, 3.0)
    rng = np.random.default_rng(0)
    dropped_at = np.zeros(plan.text)
    lengths = []
    for _ in range(400):
        m = noise_mask(plan, rng)
        assert m.shape == (plan.text,) and m.sum() == round(plan.text * 0.15) == plan.noise
        starts = np.flatnonzero(m & ~np.concatenate(([False], m[:-1])))
        assert len(starts) == plan.spans == round(plan.noise / 3.0)
        assert not m[0] and m[-1]  # a kept run first, a dropped span last (T5's interleaving)
        ends = np.flatnonzero(m & ~np.concatenate((m[1:], [False])))
        lengths.extend(ends - starts + 1)
        dropped_at += m
    assert np.mean(lengths) == pytest.approx(plan.noise / plan.spans)
    assert max(lengths) > 6  # span lengths vary (a composition, not fixed runs of 3)
    assert (dropped_at[1:] > 0).all()  # every position but the first is dropped in some draw


def test_corrupt_and_reassemble_round_trip():
    rng = np.random.default_rng(1)
    sentinels = np.arange(999, 989, -1)  # <extra_id_0> highest, as T5
    for length in (16, 70, 141):
        plan = Plan.fill(length, 0.15, 3.0)
        text = rng.integers(3, 900, plan.text)
        inputs, targets = corrupt(text, noise_mask(plan, rng), sentinels[: plan.spans], eos=1)
        assert len(inputs) == plan.inputs == length and len(targets) == plan.targets
        assert inputs[-1] == targets[-1] == 1
        # sentinels in order, descending ids, in the input and in the target
        assert list(inputs[np.isin(inputs, sentinels)]) == list(sentinels[: plan.spans])
        assert list(targets[np.isin(targets, sentinels)]) == list(sentinels[: plan.spans])
        assert targets[0] == sentinels[0]
        assert reassemble(inputs, targets, sentinels) == list(text)


def test_text_round_trip_through_the_tokenizer(t5_tokenizer):
    tok, d = t5_tokenizer
    sentinels = sentinel_ids(tok, 20, "tokenizer.path")
    assert list(sentinels) == list(range(419, 399, -1))
    rng = np.random.default_rng(2)
    lines = (d / "en.txt").read_text(encoding="utf-8").splitlines()[:200]
    for line in lines:
        ids = tok(line, add_special_tokens=False).input_ids
        if len(ids) < 4:
            continue
        plan = Plan.of(len(ids), 0.15, 3.0)
        inputs, targets = corrupt(np.asarray(ids), noise_mask(plan, rng), sentinels[: plan.spans], tok.eos_token_id)
        assert tok.decode(reassemble(inputs, targets, sentinels)) == line
        shown = tok.decode(inputs)
        assert shown.endswith("</s>") and "<extra_id_0>" in shown


def test_sentinels_are_special_and_never_split(t5_tokenizer):
    tok, d = t5_tokenizer
    ids = tok("a dog <extra_id_3> in <extra_id_17>").input_ids
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[-2:] == ["<extra_id_17>", "</s>"]  # </s> closes a text, as T5's tokenizers do
    i = pieces.index("<extra_id_3>")
    assert pieces[i - 1] != "\u2581"  # the sentinel took the space before it: no stray '▁' piece, as in training
    assert "<extra_id_5>" in tok.all_special_tokens
    assert tok.decode(ids, skip_special_tokens=True).split() == ["a", "dog", "in"]
    assert json.loads((d / "tok" / "ftkit_tokenizer.json").read_text())["extra_ids"] == 20
    assert (tok.pad_token_id, tok.eos_token_id, len(tok)) == (0, 2, 420)


def test_missing_sentinels_are_one_line_naming_the_tokenizer_and_the_key(t5_tokenizer):
    from ftkit.errors import UserError

    tok, _ = t5_tokenizer
    with pytest.raises(UserError) as e:
        sentinel_ids(tok, 28, "tokenizer.path")
    msg = str(e.value)
    assert msg.startswith("tokenizer.path: the tokenizer ") and "has 20 of the 28 sentinel tokens" in msg
    assert "<extra_id_20> missing" in msg and "tokenizer.extra_ids: 100" in msg and "\n" not in msg


def test_collate_is_a_function_of_the_batch_rng():
    plan = Plan.fill(32, 0.15, 3.0)
    task = SpanCorruption(plan, np.arange(99, 89, -1)[: plan.spans], eos=1, decoder_start=0)
    blocks = [np.arange(5, 5 + plan.text) + i for i in range(4)]
    a, b = (task.collate(blocks, np.random.default_rng(7)) for _ in range(2))
    c = task.collate(blocks, np.random.default_rng(8))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["input_ids"], c["input_ids"])
    assert a["input_ids"].shape == (4, 32) and a["labels"].shape == (4, plan.targets)
    assert (a["decoder_input_ids"][:, 0] == 0).all() and torch.equal(a["decoder_input_ids"][:, 1:], a["labels"][:, :-1])
    assert task.count_targets(a) == 4 * plan.targets
