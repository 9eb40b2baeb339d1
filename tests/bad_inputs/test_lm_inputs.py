"""Bad input: one line naming the file or key and what was expected, exit code 2, no traceback, nothing lost."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fails, run_cli, write_recipe


@pytest.fixture
def recipe(tmp_path, tiny_gpt_recipe):
    def make(**sections):
        r = json.loads(json.dumps(tiny_gpt_recipe))
        for key, value in sections.items():
            section, _, leaf = key.partition("__")
            r[section][leaf] = value
        return str(write_recipe(tmp_path / "r.yaml", r))
    return make


def test_missing_data_file(recipe):
    msg = fails("pretrain", "-r", recipe(data__train="nowhere/train.txt"))
    assert "data.train: file not found: nowhere/train.txt" in msg


def test_unknown_key(recipe):
    assert "did you mean 'train.max_steps'" in fails("pretrain", "-r", recipe(), "train.max_step=3")


def test_wrong_type(recipe):
    assert "'train.lr'" in fails("pretrain", "-r", recipe(), "train.lr=fast")


def test_empty_corpus(recipe, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty file" in fails("pretrain", "-r", recipe(data__train=str(empty)))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    assert "empty" in fails("pretrain", "-r", recipe(data__train=str(blank)))


def test_missing_text_column(recipe, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"body": "hello there"}\n' * 50)
    msg = fails("pretrain", "-r", recipe(data__train=str(rows)))
    assert "data.text_column 'text' not found; columns are: body" in msg


def test_non_utf8_file_names_line(recipe, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("line one\nline two\ncaf\xe9\n".encode("latin-1"))
    assert f"{bad}:3: not valid UTF-8" in fails("pretrain", "-r", recipe(data__train=str(bad)))


def test_missing_local_model_path_is_not_looked_up(recipe, tmp_path):
    msg = fails("eval", "--model", str(tmp_path / "no-such-model"))
    assert "--model: directory not found" in msg
    msg = fails("generate", "--model", "./runs/missing")
    assert "directory not found: ./runs/missing" in msg


@pytest.mark.e2e
def test_earlier_run_is_never_overwritten(recipe, tmp_path, tiny_gpt_recipe):
    r = recipe()
    assert run_cli("pretrain", "-r", r)[0] == 0
    out = Path(tiny_gpt_recipe["output_dir"])
    before = (out / "model.safetensors").read_bytes()
    msg = fails("pretrain", "-r", r)
    assert "holds an earlier finished run" in msg and "--resume" in msg and "--overwrite" in msg
    assert (out / "model.safetensors").read_bytes() == before
    code, _, err = run_cli("pretrain", "-r", r, "--overwrite")
    assert code == 0, err
    moved = [p for p in out.parent.iterdir() if p.name.startswith("run.old-")]
    assert len(moved) == 1 and (moved[0] / "model.safetensors").read_bytes() == before


def test_resume_without_checkpoint(recipe):
    assert "no checkpoint" in fails("pretrain", "-r", recipe(), "--resume")


def test_tokenizer_never_overwritten(recipe, tmp_path):
    r = recipe()
    assert run_cli("tokenize", "-r", r)[0] == 0
    assert "already exists" in fails("tokenize", "-r", r)


def test_real_process_exit_code_and_debug_traceback(tmp_path):
    bad = write_recipe(tmp_path / "bad.yaml", {"task": "clm"})
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", "pretrain", "-r", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "missing required key" in p.stderr
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", "--debug", "pretrain", "-r", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_a_vocabulary_smaller_than_the_tokenizer_is_refused_and_a_padded_one_is_kept(tiny_gpt_recipe, tmp_path):
    import json as _json

    r = json.loads(json.dumps(tiny_gpt_recipe))
    r["model"]["config"]["vocab_size"] = 8
    msg = fails("pretrain", "-r", str(write_recipe(tmp_path / "small.yaml", r)))
    assert "model.config.vocab_size: 8 is smaller than the tokenizer's" in msg and "set at least" in msg
    r["model"]["config"]["vocab_size"] = 128  # padded beyond the char tokenizer, as nanoGPT pads GPT-2's 50,257
    r["train"]["max_steps"], r["train"]["eval_every"] = 4, 0
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "padded.yaml", r)))
    assert code == 0, err
    assert _json.loads((Path(r["output_dir"]) / "config.json").read_text())["vocab_size"] == 128


@pytest.mark.e2e
def test_train_compile_compiles_the_blocks_and_learns_the_same(tiny_gpt_recipe, tmp_path):
    """Regional compilation (workflows/train._compile_blocks): same losses as eager within float noise."""
    losses = {}
    for compiled in (False, True):
        r = json.loads(json.dumps(tiny_gpt_recipe))
        r["output_dir"] = str(tmp_path / f"run-{compiled}")
        r["train"].update(max_steps=5, eval_every=0, log_every=1, compile=compiled, plots=False)
        code, out, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / f"c{compiled}.yaml", r)))
        assert code == 0, err
        if compiled:
            assert "train.compile: 2 blocks compiled with torch.compile (GPT2Block x 2;" in out + err
        rows = [json.loads(line) for line in (tmp_path / f"run-{compiled}" / "train_log.jsonl").read_text().splitlines()]
        losses[compiled] = [row["loss"] for row in rows]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
