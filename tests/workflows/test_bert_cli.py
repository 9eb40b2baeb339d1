"""BERT end to end through the CLI on slices of IMDB + SST-2: tokenize -> pretrain mlm+nsp -> eval --json,
then plain transformers: fill-mask pipeline and a new sequence-classification head. RoBERTa-style mlm on wikitext."""

import json
from pathlib import Path

import pytest

from conftest import run_cli, write_recipe
from encoder_helpers import IMDB_TEST, WIKI_RAW, need, write_imdb_slice, write_sst2_slice

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bert")
    imdb = write_imdb_slice(tmp / "imdb.jsonl", 120, every=40)  # negatives and positives
    sst = write_sst2_slice(tmp / "sst.tsv", 300)
    held_out = write_imdb_slice(tmp / "imdb_test.jsonl", 30, every=150, source=IMDB_TEST)
    recipe = {
        "task": "mlm+nsp", "output_dir": str(tmp / "run"),
        "tokenizer": {"kind": "wordpiece", "path": str(tmp / "tok"), "vocab_size": 1500, "lowercase": True},
        "model": {"model_type": "bert", "config": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
                                                   "intermediate_size": 128}},
        "data": {"train": [str(imdb), {"path": str(sst), "text_column": "sentence"}], "validation": str(held_out),
                 "block_size": 64, "cache_dir": str(tmp / "cache")},
        "train": {"max_steps": 30, "batch_size": 16, "lr": 2e-3, "warmup_steps": 5, "eval_every": 15, "eval_batches": 4,
                  "log_every": 10, "precision": "fp32", "dropout": 0.0},
    }
    path = write_recipe(tmp / "bert.yaml", recipe)
    code, _, err = run_cli("tokenize", "-r", str(path))
    assert code == 0, err
    code, _, err = run_cli("pretrain", "-r", str(path))
    assert code == 0, err
    return tmp, Path(recipe["output_dir"]), err


def test_pretrain_outputs(bert_run):
    _, out, log = bert_run
    assert "one-sentence documents (no next sentence) packed into" in log  # SST-2 rows: counted, used for MLM
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [15, 30]
    last = lines[-1]
    for key in ("eval_loss", "eval_masked_accuracy", "eval_nsp_accuracy", "eval_perplexity", "eval_majority_baseline_accuracy"):
        assert key in last, key
    assert last["eval_mlm_loss"] < lines[0]["eval_mlm_loss"] < 8.0  # it learns (ln 1500 = 7.3 at chance)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForPreTraining"]


def test_eval_json_matches_training_and_repeats(bert_run):
    tmp, out, _ = bert_run
    final = json.loads((out / "metrics.json").read_text())["final_metrics"]
    code, stdout, err = run_cli("eval", "--model", str(out), "--batch-size", "16", "--max-batches", "4", "--json")
    assert code == 0, err
    m = json.loads(stdout)
    assert m["task"] == "mlm+nsp"
    for key in ("loss", "masked_accuracy", "nsp_accuracy", "majority_baseline_accuracy", "masked_tokens", "nsp_pairs"):
        assert m[key] == pytest.approx(final[key], rel=1e-5, abs=1e-6), key  # same masks and pairs (masking.eval_seed)
    again = json.loads(run_cli("eval", "--model", str(out), "--batch-size", "16", "--max-batches", "4", "--json")[1])
    assert again == m
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(tmp / "imdb_test.jsonl"), "--json")
    assert code == 0, err
    m = json.loads(stdout)
    assert m["nsp_pairs"] > 50 and m["masked_tokens"] > 500 and 0 < m["majority_baseline_accuracy"] < 0.2
    assert m["majority_token"] in {".", "the", ","}


def test_plain_transformers_fill_mask_and_classification_head(bert_run):
    from transformers import AutoModelForSequenceClassification, pipeline

    _, out, _ = bert_run
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    fill = pipeline("fill-mask", model=str(out))
    top = fill("this movie was [MASK] .")
    tok, mlm = AutoTokenizer.from_pretrained(str(out)), AutoModelForMaskedLM.from_pretrained(str(out)).eval()
    enc = tok("this movie was [MASK] .", return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(mlm(**enc).logits[0, int((enc["input_ids"][0] == tok.mask_token_id).nonzero())], -1)
    best = probs.topk(5)
    assert [t["token"] for t in top] == best.indices.tolist()  # the pipeline reads the saved MLM head as is
    assert [t["score"] for t in top] == pytest.approx(best.values.tolist(), abs=1e-5)
    assert [t["token_str"] for t in top] == [tok.decode([i]) for i in best.indices.tolist()]
    model, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]  # the encoder and pooler all load
    assert not info["mismatched_keys"]
    assert model.config.type_vocab_size == 2


def test_roberta_mlm_whole_words_on_wikitext(tmp_path):
    from transformers import pipeline

    text = need(WIKI_RAW).read_text()
    (tmp_path / "train.txt").write_text(text[:150_000])
    (tmp_path / "valid.txt").write_text(text[-30_000:])
    recipe = {
        "task": "mlm", "output_dir": str(tmp_path / "run"),
        "tokenizer": {"kind": "bpe", "path": str(tmp_path / "tok"), "vocab_size": 800},
        "model": {"model_type": "roberta", "config": {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                                                      "intermediate_size": 64}},
        "data": {"train": str(tmp_path / "train.txt"), "validation": str(tmp_path / "valid.txt"), "block_size": 64,
                 "cache_dir": str(tmp_path / "cache")},
        "masking": {"whole_word": True},
        "train": {"max_steps": 12, "batch_size": 16, "lr": 2e-3, "eval_every": 0, "eval_batches": 3, "precision": "fp32"},
    }
    path = write_recipe(tmp_path / "r.yaml", recipe)
    code, _, err = run_cli("pretrain", "-r", str(path))
    assert code == 0, err
    code, stdout, err = run_cli("eval", "--model", str(tmp_path / "run"), "--max-batches", "3", "--json")
    assert code == 0, err
    m = json.loads(stdout)
    assert m["task"] == "mlm" and m["masked_tokens"] > 50 and "nsp_accuracy" not in m
    top = pipeline("fill-mask", model=str(tmp_path / "run"))("The film was released in <mask> .")
    assert len(top) == 5


def test_resume_is_exact_for_mlm_nsp(bert_run, tmp_path):
    """Masks and pairs come from each batch's position: a resumed run ends bitwise equal to an uninterrupted one."""
    import shutil

    from safetensors.torch import load_file

    tmp, _, _ = bert_run
    base = [f"output_dir={tmp_path / 'full'}", "train.max_steps=8", "train.save_every=4", "train.eval_every=0",
            "train.keep_checkpoints=5", "train.keep_checkpoints_at_end=5", "train.dropout=0.1"]  # dropout: its RNG state must be restored too
    recipe = str(tmp / "bert.yaml")
    assert run_cli("pretrain", "-r", recipe, *base)[0] == 0
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "full", cut)
    shutil.rmtree(cut / "checkpoints" / "step-8")
    (cut / "model.safetensors").unlink()
    (cut / "run.json").write_text('{"status": "running"}')  # as a killed run leaves it
    code, _, err = run_cli("pretrain", "-r", recipe, *base, f"output_dir={cut}", "--resume")
    assert code == 0 and "at step 4" in err, err
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
