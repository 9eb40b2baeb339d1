"""Resuming from a mid-run checkpoint ends bitwise equal to the uninterrupted run (CPU, one process)."""

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


def test_resume_equals_uninterrupted(tmp_path, tiny_gpt_recipe):
    tiny_gpt_recipe["train"].update(max_steps=16, save_every=4, eval_every=8, keep_checkpoints=10,
                                     keep_checkpoints_at_end=10)
    tiny_gpt_recipe["model"]["config"].update(resid_pdrop=0.1, embd_pdrop=0.1)  # dropout: RNG state must be restored
    recipe = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    code, _, err = run_cli("pretrain", "-r", str(recipe))
    assert code == 0, err
    full = Path(tiny_gpt_recipe["output_dir"])

    # An interrupted run: the same directory as it was at step 8.
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for ckpt in (cut / "checkpoints").iterdir():
        if int(ckpt.name.split("-")[1]) > 8:
            shutil.rmtree(ckpt)
    for f in ("model.safetensors", "metrics.json"):
        (cut / f).unlink()
    run = json.loads((cut / "run.json").read_text())
    (cut / "run.json").write_text(json.dumps({**run, "status": "running"}))  # as a killed run leaves it
    code, _, err = run_cli("pretrain", "-r", str(recipe), f"output_dir={cut}", "--resume")
    assert code == 0, err
    assert "resumed from" in err and "at step 8" in err

    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    ma, mb = json.loads((full / "metrics.json").read_text()), json.loads((cut / "metrics.json").read_text())
    assert ma["final_metrics"] == mb["final_metrics"] and ma["tokens"] == mb["tokens"]
    steps = [json.loads(l)["step"] for l in (cut / "metrics.jsonl").read_text().splitlines()]
    assert steps == [8, 16]  # evaluations after the checkpoint were dropped, then redone once
    # the train log likewise: each log step once; the losses those of the uninterrupted run, except the one whose
    # averaging window the cut split (it averages only the steps after the checkpoint)
    logged = dict((json.loads(l)["step"], json.loads(l)["loss"]) for l in (cut / "train_log.jsonl").read_text().splitlines())
    want = dict((json.loads(l)["step"], json.loads(l)["loss"]) for l in (full / "train_log.jsonl").read_text().splitlines())
    assert list(logged) == list(want)
    split = min(s for s in want if s > 8)
    assert {s: x for s, x in logged.items() if s != split} == pytest.approx({s: x for s, x in want.items() if s != split})


def test_a_finished_run_continues_only_with_a_larger_budget(tmp_path, tiny_gpt_recipe):
    tiny_gpt_recipe["train"].update(max_steps=8, eval_every=4)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    assert run_cli("pretrain", "-r", str(recipe))[0] == 0
    out = Path(tiny_gpt_recipe["output_dir"])
    code, _, err = run_cli("pretrain", "-r", str(recipe), "--resume")
    assert code == 0 and "nothing to do, nothing changed" in err and "resumed from" not in err
    code, _, err = run_cli("pretrain", "-r", str(recipe), "--resume", "train.max_steps=12")
    assert code == 0, err
    assert "resumed from" in err and "at step 8" in err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 12
