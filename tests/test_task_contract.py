"""The task contract, over the whole registry: every registered task trains 2 steps on tiny real data, saves,
reloads with plain transformers (its registry Auto class), and `ftkit eval` reproduces the final metrics.

A task added to ftkit/registry.py without a tiny recipe here fails `test_every_registered_task_has_a_contract_case`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftkit import registry

from conftest import DATA, need, run_cli
from tiny_models import sst2_slice, tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

WNUT = DATA / "wnut17"
BERT_TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
TRAIN = {"max_steps": 2, "batch_size": 8, "eval_every": 0, "log_every": 1, "precision": "fp32", "dropout": 0.0}


def _lines(src: Path, dst: Path, n: int) -> Path:
    with open(need(src), encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def _conll(src: Path, dst: Path, sentences: int) -> Path:
    blocks = need(src).read_text(encoding="utf-8").split("\n\n")
    dst.write_text("\n\n".join(blocks[:sentences]) + "\n", encoding="utf-8")
    return dst


def _lm(tmp: Path, task: str, model: dict, kind: str) -> dict:
    text = _lines(DATA / "tinyshakespeare" / "input.txt", tmp / "text.txt", 400)
    return {"task": task, "output_dir": str(tmp / "run"),
            "tokenizer": {"kind": kind, "path": str(tmp / "tok"), "vocab_size": 300, "lowercase": True},
            "model": model,
            "data": {"train": str(text), "validation_split": 0.2, "sample_by": "paragraph" if task == "mlm+nsp" else "line",
                     "block_size": 32, "cache_dir": str(tmp / "cache")},
            "train": TRAIN}


def _gz_lines(src: Path, dst: Path, n: int) -> Path:
    import gzip

    with gzip.open(need(src), "rt", encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def _seq2seq(tmp: Path) -> dict:
    """A tiny T5 from its config, a joint Unigram vocabulary of both sides, Multi30k German -> English line pairs."""
    raw = DATA / "multi30k" / "raw"
    side = lambda split, lang, n: str(_gz_lines(raw / f"{split}.{lang}.gz", tmp / f"{split}.{lang}", n))  # noqa: E731
    return {"task": "seq2seq", "output_dir": str(tmp / "run"),
            "tokenizer": {"kind": "unigram", "path": str(tmp / "tok"), "vocab_size": 300},
            "model": {"model_type": "t5", "config": {"d_model": 32, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2,
                                                     "num_heads": 2, "d_kv": 16}},
            "data": {"train": [side("train", "de", 64), side("train", "en", 64)],
                     "validation": [side("val", "de", 16), side("val", "en", 16)]},
            "seq2seq": {"generation": {"max_new_tokens": 12}}, "train": TRAIN}


def _sft(tmp: Path) -> dict:
    """A tiny Llama written as a GGUF file (the starting point sft recipes name), GSM8K as instructions."""
    from conftest import tiny_llama
    from tiny_gguf import tiny_chat_tokenizer, write_tiny_llama_gguf

    tok = tiny_chat_tokenizer(tmp / "tok")
    gsm = DATA / "gsm8k"
    return {"task": "sft", "output_dir": str(tmp / "run"),
            "model": {"from_pretrained": str(write_tiny_llama_gguf(tiny_llama(tok), tok, tmp / "tiny.gguf"))},
            "data": {"train": str(_lines(gsm / "train.jsonl", tmp / "train.jsonl", 40)),
                     "validation": str(_lines(gsm / "test.jsonl", tmp / "dev.jsonl", 8)),
                     "block_size": 1024},
            "sft": {"prompt_template": "{question}", "response_template": "{answer}"},
            "train": TRAIN}


def _dpo(tmp: Path) -> dict:
    """A tiny Llama written as a GGUF file, fully fine-tuned (the reference: a frozen copy, Prepared.frozen) on
    synthetic preference pairs."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "preference"))
    from pref_helpers import synthetic_pairs, tiny_chat_model, write_jsonl

    _, gguf = tiny_chat_model(tmp)
    return {"task": "dpo", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(gguf)},
            "data": {"train": str(write_jsonl(tmp / "train.jsonl", synthetic_pairs(40))),
                     "validation": str(write_jsonl(tmp / "dev.jsonl", synthetic_pairs(8, offset=100))), "block_size": 128},
            "train": TRAIN}


def _images(tmp: Path, task: str) -> dict:
    """A tiny ViT (image-cls) or MAE (mim) on the first 40 Fashion-MNIST images, as IDX files."""
    from image_helpers import NAMES, fashion_arrays, vit_recipe, write_idx

    x, y = fashion_arrays(40)
    write_idx(tmp / "train-labels-idx1-ubyte.gz", y)
    recipe = vit_recipe(tmp, write_idx(tmp / "train-images-idx3-ubyte.gz", x), task=task, train=TRAIN)
    if task == "mim":
        recipe["model"] = {"model_type": "vit_mae", "config": {**recipe["model"]["config"], "decoder_hidden_size": 16,
                                                               "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2,
                                                               "decoder_intermediate_size": 32}}
        del recipe["data"]["label_map"]
    else:
        recipe["data"]["label_map"] = dict(enumerate(NAMES))
    return recipe


def _span(tmp: Path) -> dict:
    """A tiny T5 on Multi30K English captions; its unigram tokenizer carries T5's sentinels."""
    tok = DATA / "multi30k" / "tok"
    return {"task": "span-corruption", "output_dir": str(tmp / "run"),
            "tokenizer": {"kind": "unigram", "path": str(tmp / "tok"), "vocab_size": 300, "extra_ids": 10},
            "model": {"model_type": "t5", "config": {"num_layers": 1, "num_decoder_layers": 1, "d_model": 32, "d_kv": 8,
                                                     "num_heads": 4, "d_ff": 64}},
            "data": {"train": str(_lines(tok / "train.lc.norm.tok.en", tmp / "train.en", 400)),
                     "validation": str(_lines(tok / "val.lc.norm.tok.en", tmp / "val.en", 40)), "block_size": 32,
                     "cache_dir": str(tmp / "cache")},
            "train": TRAIN}


CASES = {
    "clm": lambda tmp: _lm(tmp, "clm", {"model_type": "gpt2", "config": {"n_layer": 2, "n_head": 2, "n_embd": 32}}, "char"),
    "mlm": lambda tmp: _lm(tmp, "mlm", {"model_type": "bert", "config": BERT_TINY}, "wordpiece"),
    "mlm+nsp": lambda tmp: _lm(tmp, "mlm+nsp", {"model_type": "bert", "config": BERT_TINY}, "wordpiece"),
    "electra": lambda tmp: _lm(tmp, "electra", {"model_type": "electra", "config": {**BERT_TINY, "embedding_size": 32}},
                               "wordpiece"),
    "cls": lambda tmp: {"task": "cls", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(tiny_bert_dir(tmp / "base"))},
                        "data": {"train": str(sst2_slice("train.tsv", tmp / "train.tsv", 64)),
                                 "validation": str(sst2_slice("dev.tsv", tmp / "dev.tsv", 24)), "text_column": "sentence",
                                 "label_map": {0: "negative", 1: "positive"}, "block_size": 32},
                        "train": TRAIN},
    "ner": lambda tmp: {"task": "ner", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(tiny_bert_dir(tmp / "base"))},
                        "data": {"train": str(_conll(WNUT / "wnut17train.conll", tmp / "train.conll", 64)),
                                 "validation": str(_conll(WNUT / "emerging.dev.conll", tmp / "dev.conll", 24)), "block_size": 32},
                        "train": TRAIN},
    "qa": lambda tmp: {"task": "qa", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(tiny_bert_dir(tmp / "base"))},
                       "data": {"train": str(_lines(DATA / "squadshifts_new_wiki" / "train.jsonl", tmp / "train.jsonl", 40)),
                                "validation": str(_lines(DATA / "squad_v1.1" / "dev.jsonl", tmp / "dev.jsonl", 16))},
                       "qa": {"max_length": 64, "doc_stride": 16}, "train": TRAIN},
    "seq2seq": _seq2seq,
    "sft": _sft,
    "dpo": _dpo,
    "image-cls": lambda tmp: _images(tmp, "image-cls"),
    "mim": lambda tmp: _images(tmp, "mim"),
    "span-corruption": _span,
}


def test_every_registered_task_has_a_contract_case():
    assert set(CASES) == set(registry.NAMES)


@pytest.mark.parametrize("name", registry.NAMES)
def test_train_save_reload_eval(name, tmp_path):
    import transformers

    from ftkit.recipe import validate
    from ftkit.workflows import train

    recipe = validate(CASES[name](tmp_path))
    entry = registry.entry(name)
    summary = train.run(recipe, log=lambda *_: None, family=entry.family)
    out = Path(recipe.output_dir)
    assert summary["steps"] == 2 and summary["examples"] == 2 * TRAIN["batch_size"]
    model = getattr(transformers, entry.auto_class).from_pretrained(str(out))  # plain transformers, no ftkit
    inferred = registry.infer(model.config.architectures)  # sft shares its architecture with clm: its recipe tells them apart
    assert inferred.name == name or inferred.auto_class == entry.auto_class
    preprocessor = {"tokenizer": "AutoTokenizer", "image_processor": "AutoImageProcessor"}[entry.preprocessor]
    getattr(transformers, preprocessor).from_pretrained(str(out))  # the preprocessor was saved beside it
    assert json.loads((out / "run.json").read_text())["status"] == "finished"

    code, stdout, err = run_cli("eval", "--model", str(out), "--json", "--batch-size", "8")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["task"] == name
    final = summary["final_metrics"]
    shown = [k for k, v in final.items() if isinstance(v, float)]  # every number the run's last evaluation logged
    assert summary["metric_for_best"] in shown
    assert {k: result[k] for k in shown} == pytest.approx({k: final[k] for k in shown}, rel=1e-5, abs=1e-6)


def test_eval_of_a_classifier_works_without_matplotlib(tmp_path, monkeypatch):
    """matplotlib is optional (the `plots` extra): without it the metrics come, and one line says how to get the image."""
    import sys

    from ftkit.recipe import validate
    from ftkit.workflows import evaluate, train

    recipe = validate(CASES["cls"](tmp_path))
    train.run(recipe, log=lambda *_: None, family=registry.FINETUNE)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    said: list[str] = []
    result = evaluate.run(recipe.output_dir, log=said.append)
    assert "accuracy" in result and "confusion_matrix_png" not in result
    assert any("pip install 'ftkit[plots]'" in s for s in said)


def test_cls_trains_on_a_seeded_sample_with_the_classes_in_proportion(tmp_path):
    """data.train_examples (the few-labels curve, bench/probes/few_labels.py): N training rows, classes in proportion, the
    validation rows whole; the sample is a function of train.seed."""
    from ftkit.recipe import validate
    from ftkit.tasks.cls.data import train_and_validation

    raw = CASES["cls"](tmp_path)
    raw["data"]["train_examples"] = 20
    recipe = validate(raw)
    said: list[str] = []
    full, _ = train_and_validation(validate(CASES["cls"](tmp_path)).data, 0, log=lambda *_: None)
    train, val = train_and_validation(recipe.data, 0, log=said.append)
    assert len(train) == 20 and len(val) == 24
    from collections import Counter

    ours, whole = Counter(train.labels), Counter(full.labels)
    assert len(whole) == 2 and all(abs(ours[c] / 20 - n / 64) <= 1 / 20 for c, n in whole.items())
    assert set(train.texts) <= set(full.texts)
    assert "data.train_examples: a seeded sample of 20 of 64 training rows (classes in proportion)" in said
    assert train_and_validation(recipe.data, 0, log=lambda *_: None)[0].texts == train.texts
    assert train_and_validation(recipe.data, 1, log=lambda *_: None)[0].texts != train.texts
    from ftkit.workflows import train as train_workflow

    summary = train_workflow.run(recipe, log=lambda *_: None, family=registry.FINETUNE)
    assert summary["train_examples"] == 20
