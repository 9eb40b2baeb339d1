"""End to end through the CLI on a slice of tiny Shakespeare: tokenize -> pretrain -> eval -> generate."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tokenize + pretrain run shared by the tests of this module (they only read its outputs)."""
    from conftest import SHAKESPEARE, need

    tmp_path = tmp_path_factory.mktemp("gpt")
    (tmp_path / "shakespeare.txt").write_text(need(SHAKESPEARE).read_text()[:60_000])
    tiny_gpt_recipe = {
        "task": "clm", "output_dir": str(tmp_path / "run"),
        "tokenizer": {"kind": "bpe", "vocab_size": 300, "path": str(tmp_path / "tok")},
        "model": {"model_type": "gpt2", "config": {"n_layer": 2, "n_head": 2, "n_embd": 32}},
        "data": {"train": str(tmp_path / "shakespeare.txt"), "validation_split": 0.1, "split_mode": "tail",
                 "add_eos": False, "block_size": 32, "cache_dir": str(tmp_path / "cache")},
        "train": {"max_steps": 30, "batch_size": 8, "lr": 3e-3, "eval_every": 10, "log_every": 5, "precision": "fp32",
                  "eval_batches": 4},
    }
    recipe = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    code, _, err = run_cli("tokenize", "-r", str(recipe), "--encode")
    assert code == 0, err
    assert "bytes/token" in err and "vocab 300" in err
    code, _, err = run_cli("pretrain", "-r", str(recipe))
    assert code == 0, err
    assert "from cache" in err  # pretrain reused the encoded corpus
    return recipe, Path(tiny_gpt_recipe["output_dir"])


def test_pretrain_outputs(trained):
    _, out = trained
    metrics = json.loads((out / "metrics.json").read_text())
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [10, 20, 30]
    assert lines[-1]["eval_loss"] < lines[0]["eval_loss"]  # it learns
    assert metrics["steps"] == 30 and metrics["train_runtime_s"] > 0 and metrics["tokens"] == 30 * 8 * 32
    assert metrics["best"] == min(l["eval_loss"] for l in lines)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    assert (out / "recipe.yaml").is_file() and json.loads((out / "run.json").read_text())["status"] == "finished"


def test_plain_transformers_loads_the_output(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    _, out = trained
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    text = "First Citizen:\nSpeak."
    assert tok.decode(tok(text)["input_ids"]) == text
    gen = pipeline("text-generation", model=str(out))
    assert isinstance(gen("ROMEO:", max_new_tokens=5, do_sample=False)[0]["generated_text"], str)
    assert model.config.vocab_size == len(tok)


def test_eval_json_and_table(trained):
    recipe, out = trained
    code, stdout, err = run_cli("eval", "--model", str(out), "--json")
    assert code == 0, err
    m = json.loads(stdout)
    best = json.loads((out / "metrics.json").read_text())["final_metrics"]
    assert abs(m["loss"] - best["loss"]) < 0.02  # same validation data, all batches vs eval_batches=4
    assert m["perplexity"] == pytest.approx(2.718281828 ** m["loss"], rel=1e-6)
    code, stdout, _ = run_cli("eval", "--model", str(out), "--data", str(Path(recipe).parent / "shakespeare.txt"))
    assert code == 0 and "perplexity" in stdout


def test_generate_is_seeded(trained):
    _, out = trained
    a = run_cli("generate", "--model", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "1")
    b = run_cli("generate", "--model", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "1")
    assert a[0] == 0 and a[1] == b[1] and a[1].startswith("ROMEO:") and len(a[1]) > len("ROMEO:")


def test_generate_beyond_the_context(trained):
    _, out = trained  # block_size 32: longer samples slide the context window
    code, stdout, err = run_cli("generate", "--model", str(out), "--max-new-tokens", "100", "--temperature", "0")
    assert code == 0, err
    assert len(stdout) > 90


def test_help_is_fast():
    import time

    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ftkit.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "pretrain" in r.stdout
    assert "torch" not in subprocess.run([sys.executable, "-c", "import sys, ftkit.cli; print(list(sys.modules))"],
                                         capture_output=True, text=True).stdout
    assert time.perf_counter() - t < 30  # generous: the real check is that torch is not imported
