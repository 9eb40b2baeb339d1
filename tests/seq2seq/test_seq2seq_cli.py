"""Seq2seq end to end on real Multi30k slices with tiny models: finetune (a T5 from its config and a joint
Unigram vocabulary) -> the loss falls -> eval (validation and --data SOURCE,TARGET: the same figures as the run's
last evaluation, predictions written) -> predict (JSON lines, --format text) -> generate -> the card's snippet;
a BERT2BERT warm start and LoRA on it; bad input of eval and predict."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
from pathlib import Path

import pytest

from conftest import DATA, fails, need, run_cli, write_recipe
from tiny_models import tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

RAW = DATA / "multi30k" / "raw"


def _side(tmp: Path, split: str, lang: str, n: int) -> str:
    with gzip.open(need(RAW / f"{split}.{lang}.gz"), "rt", encoding="utf-8") as f:
        (tmp / f"{split}.{lang}").write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return str(tmp / f"{split}.{lang}")


def t5_recipe(tmp: Path, **train) -> dict:
    return {"task": "seq2seq", "output_dir": str(tmp / "run"),
            "tokenizer": {"kind": "unigram", "path": str(tmp / "tok"), "vocab_size": 400},
            "model": {"model_type": "t5", "config": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2,
                                                     "num_heads": 4, "d_kv": 16}},
            "data": {"train": [_side(tmp, "train", "de", 320), _side(tmp, "train", "en", 320)],
                     "validation": [_side(tmp, "val", "de", 24), _side(tmp, "val", "en", 24)]},
            "seq2seq": {"generation": {"max_new_tokens": 16, "num_beams": 2}, "label_smoothing": 0.1},
            "train": {"max_steps": 20, "batch_size": 16, "lr": 3e-3, "eval_every": 0, "log_every": 5, "precision": "fp32",
                      "threads": 1, **train}}


@pytest.fixture(scope="module")
def t5_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("s2s")
    code, _, err = run_cli("finetune", "-r", str(write_recipe(d / "r.yaml", t5_recipe(d))))
    assert code == 0, err
    return d


def test_the_loss_falls_and_eval_reproduces_the_last_evaluation(t5_run):
    run = t5_run / "run"
    train = [json.loads(l)["loss"] for l in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(train) == 4 and train[-1] < 0.9 * train[0], train
    final = json.loads((run / "metrics.json").read_text())["final_metrics"]
    assert final["loss"] < 5.5 and final["examples"] == 24  # ln(400) = 6.0: the model learned the target side
    gen = json.loads((run / "generation_config.json").read_text())
    assert gen["num_beams"] == 2 and gen["max_new_tokens"] == 16 and gen["decoder_start_token_id"] == gen["pad_token_id"]

    code, out, err = run_cli("eval", "--model", str(run), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {k: result[k] for k in ("bleu", "chrf", "loss", "gen_len")} == pytest.approx(
        {k: final[k] for k in ("bleu", "chrf", "loss", "gen_len")}, rel=1e-6)
    assert "tok:13a" in result["signature"]
    rows = [json.loads(l) for l in Path(result["predictions"]).read_text().splitlines()]
    assert len(rows) == 24 and rows[0]["reference"] == Path(t5_run / "val.en").read_text().splitlines()[0]

    code, out, err = run_cli("eval", "--model", str(run), "--data", f"{t5_run / 'val.de'},{t5_run / 'val.en'}", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["bleu"] == pytest.approx(result["bleu"]) and Path(again["predictions"]).name == "predictions-val.jsonl"


def test_predict_generate_and_the_card_snippet(t5_run):
    run = t5_run / "run"
    sources = Path(t5_run / "val.de").read_text().splitlines()[:3]
    code, out, err = run_cli("predict", "--model", str(run), str(t5_run / "val.de"))
    assert code == 0, err
    rows = [json.loads(l) for l in out.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 25)) and all(r["prediction"].strip() for r in rows)
    evaluated = [json.loads(l)["prediction"] for l in (run / "predictions-validation.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == evaluated  # predict decodes as evaluation did (beam search, 16 tokens)
    (t5_run / "three.txt").write_text("\n".join([sources[0], "", sources[2]]) + "\n")
    code, out, err = run_cli("predict", "--model", str(run), str(t5_run / "three.txt"), "--format", "text")
    assert code == 0, err
    assert out.splitlines() == [evaluated[0], "", evaluated[2]]
    code, out, err = run_cli("generate", "--model", str(run), "--prompt", sources[0])
    assert code == 0 and out.strip() == evaluated[0], (out, err)

    card = (run / "README.md").read_text()
    code_block = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code_block, "card", "exec"), {})  # noqa: S102 (the card's own code, on the model just trained)
    assert printed.getvalue().strip()


def test_a_bert2bert_warm_start_trains_with_lora_and_reloads_as_plain_transformers(tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    base = str(tiny_bert_dir(tmp_path / "bert"))
    raw = t5_recipe(tmp_path, max_steps=2, log_every=1)
    raw.update(tokenizer=None, model={"from_pretrained": base}, seq2seq={"warm_start_decoder": base})
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", raw)))
    assert code == 0, err
    assert "decoding starts from '[CLS]'" in err and "max_source_length 64" in err  # the tiny BERT's 64 positions
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "run"))
    assert type(model).__name__ == "EncoderDecoderModel" and model.config.decoder_start_token_id == 101

    raw.update(output_dir=str(tmp_path / "lora"), model={"from_pretrained": str(tmp_path / "run")}, seq2seq={},
               finetune={"strategy": "lora", "target_modules": ["query", "value"]})
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "lora.yaml", raw)))
    assert code == 0, err
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    code, out, err = run_cli("eval", "--model", str(tmp_path / "lora"), "--json")
    assert code == 0, err
    assert json.loads(out)["examples"] == 24


def test_bad_input_of_eval_and_predict(t5_run, tmp_path):
    run = t5_run / "run"
    (tmp_path / "a.de").write_text("Ein Hund.\nZwei Hunde.\n")
    (tmp_path / "a.en").write_text("A dog.\n")
    line = fails("eval", "--model", str(run), "--data", f"{tmp_path / 'a.de'},{tmp_path / 'a.en'}")
    assert "a.de has 2 lines but" in line and "a.en has 1" in line
    assert "FILE: not found" in fails("predict", "--model", str(run), str(tmp_path / "nowhere.txt"))
    assert "--format: 'conll'" in fails("predict", "--model", str(run), str(tmp_path / "a.de"), "--format", "conll")
    assert "encoder-decoder" in fails("chat", "--model", str(run))
