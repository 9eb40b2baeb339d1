"""Span corruption end to end on Multi30K English captions with a tiny T5: `ftkit tokenize` (sentinels) ->
`ftkit pretrain --task span-corruption` (the loss falls; a plain AutoModelForSeq2SeqLM reloads it with the right
special ids and generates) -> exact --resume -> a tokenizer without sentinels refused in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import DATA, cut_run, fails, need, run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

TOK = DATA / "multi30k" / "tok"
T5_TINY = {"num_layers": 2, "num_decoder_layers": 2, "d_model": 32, "d_kv": 8, "num_heads": 4, "d_ff": 64}


def _lines(src: Path, dst: Path, n: int) -> Path:
    with open(need(src), encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def span_recipe(tmp: Path, out: str = "run", **train) -> dict:
    return {"task": "span-corruption", "output_dir": str(tmp / out),
            "tokenizer": {"kind": "unigram", "path": str(tmp / "tok"), "vocab_size": 500, "extra_ids": 100},
            "model": {"model_type": "t5", "config": T5_TINY},
            "data": {"train": str(tmp / "train.en"), "validation": str(tmp / "val.en"), "block_size": 48, "add_eos": True,
                     "cache_dir": str(tmp / "cache")},
            "train": {"max_steps": 30, "batch_size": 16, "lr": 3e-3, "eval_every": 0, "log_every": 5, "precision": "fp32", "threads": 1,
                      **train}}


@pytest.fixture(scope="module")
def span_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("span")
    _lines(TOK / "train.lc.norm.tok.en", d / "train.en", 2000)
    _lines(TOK / "val.lc.norm.tok.en", d / "val.en", 200)
    recipe = write_recipe(d / "r.yaml", span_recipe(d))
    code, _, err = run_cli("tokenize", "-r", str(recipe))
    assert code == 0, err
    code, _, err = run_cli("pretrain", "--task", "span-corruption", "-r", str(recipe))
    assert code == 0, err
    return d, err


def test_loss_falls_and_plain_transformers_reloads_it(span_run):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    d, err = span_run
    assert "encoder input 48 (kept tokens, 3 sentinels, </s>), decoder target 12" in err
    losses = [json.loads(line)["loss"] for line in (d / "run" / "train_log.jsonl").read_text().splitlines() if "loss" in line]
    assert losses[0] > math.log(600) - 0.5  # starts near chance over the 600-token vocabulary
    assert losses[-1] < losses[0] - 0.6, losses
    metrics = json.loads((d / "run" / "metrics.json").read_text())
    assert metrics["final_metrics"]["loss"] < math.log(600) - 0.7  # validation too, well below chance
    model = AutoModelForSeq2SeqLM.from_pretrained(str(d / "run"))
    tok = AutoTokenizer.from_pretrained(str(d / "run"))
    cfg = model.config
    assert type(model).__name__ == "T5ForConditionalGeneration" and cfg.vocab_size == len(tok) == 600
    assert (cfg.pad_token_id, cfg.eos_token_id, cfg.decoder_start_token_id) == (tok.pad_token_id, tok.eos_token_id, tok.pad_token_id)
    assert model.generation_config.decoder_start_token_id == tok.pad_token_id
    x = tok("a man in a <extra_id_0> shirt .", return_tensors="pt")
    out = model.generate(**x, max_new_tokens=5, do_sample=False)
    assert out[0, 0] == tok.pad_token_id  # generation starts where training did


def test_resume_is_exact(span_run, tmp_path):
    """Killed after step 3 of 6 and resumed: the weights bit for bit and the metrics of the uninterrupted run (the
    spans of each batch come from its position, dropout from the saved RNG state)."""
    import torch
    from safetensors.torch import load_file

    d, _ = span_run
    recipe = write_recipe(tmp_path / "r.yaml", span_recipe(d, str(tmp_path / "full"), max_steps=6, save_every=3,
                                                           keep_checkpoints=5, keep_checkpoints_at_end=5, dropout=0.1))
    code, _, err = run_cli("pretrain", "-r", str(recipe))
    assert code == 0, err
    cut = cut_run(tmp_path / "full", tmp_path / "cut", 3)
    code, _, err = run_cli("pretrain", "-r", str(recipe), f"output_dir={cut}", "--resume")
    assert code == 0 and "at step 3" in err, err
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((x / "metrics.json").read_text()) for x in (tmp_path / "full", cut))
    assert ma["final_metrics"] == mb["final_metrics"]


def test_a_tokenizer_without_sentinels_is_refused_in_one_line(span_run, tmp_path):
    d, _ = span_run
    raw = span_recipe(d, str(tmp_path / "run"))
    raw["tokenizer"] = {"kind": "unigram", "path": str(tmp_path / "plain-tok"), "vocab_size": 300}  # extra_ids: 0
    line = fails("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", raw)))
    assert f"tokenizer.path: the tokenizer {tmp_path / 'plain-tok'} has 0 of the 3 sentinel tokens" in line
    assert "set tokenizer.extra_ids: 100" in line
    assert not (tmp_path / "run").exists()  # refused before the run started


def test_pretrain_task_option_must_be_a_pretraining_task(span_run):
    d, _ = span_run
    assert "'qa' is not a pre-training task" in fails("pretrain", "--task", "qa", "-r", str(d / "r.yaml"))
    assert "is a 'span-corruption' recipe" in fails("pretrain", "--task", "clm", "-r", str(d / "r.yaml"))
