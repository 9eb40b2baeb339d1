"""Bad input for mlm / mlm+nsp: one line naming the key or file and what was expected, exit 2, nothing written."""

import json
from pathlib import Path

import pytest

from conftest import fails, run_cli, write_recipe
from encoder_helpers import imdb_texts, train_tokenizer, write_imdb_slice, write_sst2_slice


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok") / "wp"
    train_tokenizer("wordpiece", "mlm+nsp", imdb_texts(100), folder, vocab_size=800)
    return folder


@pytest.fixture
def recipe(tmp_path, wordpiece):
    def make(**changes):
        r = {"task": "mlm+nsp", "output_dir": str(tmp_path / "run"), "tokenizer": {"path": str(wordpiece)},
             "model": {"model_type": "bert", "config": {"num_hidden_layers": 1, "hidden_size": 32,
                                                        "num_attention_heads": 2, "intermediate_size": 64}},
             "data": {"train": str(write_imdb_slice(tmp_path / "imdb.jsonl", 20)), "block_size": 64,
                      "cache_dir": str(tmp_path / "cache")},
             "train": {"max_steps": 2, "batch_size": 4, "precision": "fp32"}}
        for key, value in changes.items():
            section, _, leaf = key.partition("__")
            if leaf:
                r[section][leaf] = value
            else:
                r[section] = value
        return str(write_recipe(tmp_path / "r.yaml", r))
    return make


def nothing_written(tmp_path):
    assert not (tmp_path / "run").exists()


def test_corpus_of_one_sentence_documents(recipe, tmp_path):
    sst = write_sst2_slice(tmp_path / "sst.tsv", 40)
    msg = fails("pretrain", "-r", recipe(data__train=str(sst), data__text_column="sentence"))
    assert "documents too short to form a sentence pair: none of the 40 documents has two sentences" in msg
    assert str(sst) in msg
    nothing_written(tmp_path)


def test_single_document_corpus(recipe, tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("First sentence here. Second one follows. A third one ends it.\nAnd a new line.\n")
    msg = fails("pretrain", "-r", recipe(data__train=str(one), data__sample_by="document"))
    assert "only one document has two or more sentences; next-sentence prediction is impossible with a single document" in msg
    nothing_written(tmp_path)


def test_tokenizer_without_mask_token(recipe, tmp_path):
    gpt = tmp_path / "gpt-tok"
    train_tokenizer("bpe", "clm", imdb_texts(30), gpt, vocab_size=400)
    msg = fails("pretrain", "-r", recipe(task="mlm", tokenizer={"path": str(gpt)}))
    assert msg.startswith("error: tokenizer.path: the tokenizer has no mask token")
    nothing_written(tmp_path)


def test_vocabulary_larger_than_the_embeddings(recipe, tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    small = tmp_path / "small-bert"
    BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(small)
    msg = fails("pretrain", "-r", recipe(task="mlm", model={"from_pretrained": str(small)}))
    assert "has 800 tokens but the model's embeddings have 100 rows" in msg
    nothing_written(tmp_path)


def test_nsp_with_a_model_without_nsp_head(recipe, tmp_path):
    msg = fails("pretrain", "-r", recipe(model={"model_type": "roberta", "config": {"num_hidden_layers": 1,
                                                                                   "hidden_size": 32,
                                                                                   "num_attention_heads": 2}}))
    assert "task: mlm+nsp needs a model with a next-sentence head" in msg
    nothing_written(tmp_path)


def test_nsp_cannot_stream(recipe, tmp_path):
    assert "data.streaming: mlm+nsp builds pairs from whole documents" in fails("pretrain", "-r", recipe(data__streaming=True))
    nothing_written(tmp_path)


def test_eval_of_an_nsp_model_on_one_sentence_documents(recipe, tmp_path):
    assert run_cli("pretrain", "-r", recipe())[0] == 0
    sst = write_sst2_slice(tmp_path / "sst.tsv", 10)
    before = json.loads((Path(tmp_path) / "run" / "metrics.json").read_text())
    msg = fails("eval", "--model", str(tmp_path / "run"), "--data", str(sst))
    assert "text_column 'text' not found" in msg  # the recipe's text column, named with the file
    assert json.loads((Path(tmp_path) / "run" / "metrics.json").read_text()) == before
