"""Runs die: kill -9 at a random step, or SIGTERM; `--resume` then ends bitwise equal to an uninterrupted run."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from conftest import SHAKESPEARE, need

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

STEPS = 150


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interrupt")
    data = tmp / "s.txt"
    data.write_text(need(SHAKESPEARE).read_text()[:60_000])
    recipe = {
        "task": "clm", "output_dir": str(tmp / "full"),
        "tokenizer": {"kind": "char", "path": str(tmp / "tok")},
        "model": {"model_type": "gpt2", "config": {"n_layer": 2, "n_head": 2, "n_embd": 32}},
        "data": {"train": str(data), "validation_split": 0.1, "split_mode": "tail", "add_eos": False, "block_size": 32,
                 "cache_dir": str(tmp / "cache")},
        "train": {"max_steps": STEPS, "batch_size": 8, "lr": 3e-3, "eval_every": 100, "save_every": 10,
                  "keep_checkpoints": 3, "log_every": 50, "precision": "fp32", "eval_batches": 2, "dropout": 0.1},
    }
    path = tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run(path, "output_dir=" + str(tmp / "full")).wait(timeout=300)
    return path, tmp


def run(recipe: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ftkit.cli", "pretrain", "-r", str(recipe), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout=120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if list((out / "checkpoints").glob("step-*/trainer_state.json")):
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def assert_same_model(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] == wb[k]).all(), k
    ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert ma["final_metrics"] == mb["final_metrics"] and ma["steps"] == mb["steps"] == STEPS


def test_kill_9_at_a_random_step_then_resume(setup):
    recipe, tmp = setup
    out = tmp / "killed"
    proc = run(recipe, f"output_dir={out}")
    wait_for_checkpoint(out, proc)
    time.sleep(random.uniform(0.0, 1.0))
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists()
    resumed = run(recipe, f"output_dir={out}", "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resumed from" in err
    assert_same_model(tmp / "full", out)


def test_sigterm_checkpoints_then_resume_finishes(setup):
    recipe, tmp = setup
    out = tmp / "termed"
    proc = run(recipe, f"output_dir={out}")
    wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by signal" in err
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "stopped"
    last = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*"))
    assert last == status["step"] and 0 < last < STEPS  # a checkpoint at the very step it stopped
    resumed = run(recipe, f"output_dir={out}", "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert_same_model(tmp / "full", out)


def test_resume_refuses_a_different_model(setup):
    recipe, tmp = setup
    out = tmp / "other"
    shutil.copytree(tmp / "full", out)
    p = run(recipe, f"output_dir={out}", "--resume", "model.config.n_layer=3")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "trained with a different model.config.n_layer (2 then, 3 now)" in err
    assert "Traceback" not in err
