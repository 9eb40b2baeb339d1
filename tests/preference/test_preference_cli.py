"""`ftkit finetune --task dpo` end to end with a tiny Llama read from a GGUF file on a synthetic preference set: step 1
at ln 2, the loss falls and rewards/accuracies rises, `ftkit eval` (the run, and the base through --recipe), a chat
reply; precomputed reference log-probs reused by an exact --resume; the reference-free losses train."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import run_cli, write_recipe

pytestmark = pytest.mark.e2e

pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pref_helpers import tiny_chat_model

    d = tmp_path_factory.mktemp("tiny-llm")
    return tiny_chat_model(d)[1]


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_dpo_lora_learns_the_preference_and_evaluates(tiny, tmp_path):
    from pref_helpers import recipe

    r = write_recipe(tmp_path / "r.yaml", recipe(tmp_path, tiny, dpo={"beta": 0.5},
                                                  train={"max_steps": 16, "eval_every": 8, "lr": 1e-2}))
    code, _, err = run_cli("finetune", "--task", "dpo", "-r", str(r))
    assert code == 0, err
    assert "reference: the model with its adapter disabled (no copy)" in err and "train: 64 pairs on 64 prompts; 64 kept, " in err
    run = tmp_path / "run"
    train = _rows(run / "train_log.jsonl")
    assert train[0]["step"] == 1 and train[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference
    assert train[0]["rewards/accuracies"] == 0.0 and train[0]["rewards/margins"] == 0.0
    assert sum(x["loss"] for x in train[-4:]) / 4 < 0.6 < math.log(2)
    evals = _rows(run / "metrics.jsonl")
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] < math.log(2)
    assert evals[-1]["eval_rewards/accuracies"] >= 0.75 and evals[-1]["eval_rewards/margins"] > 0

    code, out, err = run_cli("eval", "--model", str(run), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["task"] == "dpo" and got["pairs"] == 16
    assert got["rewards/accuracies"] == pytest.approx(evals[-1]["eval_rewards/accuracies"])
    # the starting point: the base model scored with the same recipe (its own reference: every implicit reward 0)
    code, out, err = run_cli("eval", "--model", str(tiny), "--recipe", str(r), "--task", "dpo", "--json")
    assert code == 0, err
    base = json.loads(out)
    assert base["rewards/margins"] == 0.0 and base["loss"] == pytest.approx(math.log(2)) and "reference: the model itself" in err
    assert got["logps/accuracies"] > base["logps/accuracies"]

    code, out, err = run_cli("generate", "--model", str(run), "--chat", "--prompt", "What is two plus two?",
                             "--temperature", "0", "--max-new-tokens", "4")
    assert code == 0, err

    # replies to look at: the generation evaluation of sft (the chosen reply as the reference), on prompt_completion rows
    from pref_helpers import synthetic_pairs, write_jsonl

    asks = write_jsonl(tmp_path / "asks.jsonl", [{"prompt": r["prompt"], "completion": r["chosen"]} for r in synthetic_pairs(3)])
    code, out, err = run_cli("eval", "--model", str(run), "--generate", "--data", str(asks), "--json",
                             "--generations", str(tmp_path / "replies.jsonl"))
    assert code == 0, err
    gen = json.loads(out)
    assert gen["task"] == "dpo" and gen["examples"] == 3 and 0.0 <= gen["exact_match"] <= 1.0
    replies = _rows(tmp_path / "replies.jsonl")
    assert [r["reference"] for r in replies] == [r["chosen"] for r in synthetic_pairs(3)] and all("reply" in r for r in replies)


def test_precomputed_reference_logps_and_exact_resume(tiny, tmp_path):
    """The cache is written once, read by --resume (not recomputed), and the resumed run equals the uninterrupted one."""
    import shutil

    from pref_helpers import recipe
    from safetensors.torch import load_file

    raw = recipe(tmp_path, tiny, dpo={"precompute_ref_logps": True}, train={"max_steps": 4, "save_every": 2, "keep_checkpoints": 5, "keep_checkpoints_at_end": 5})
    r = write_recipe(tmp_path / "r.yaml", raw)
    full, cut = tmp_path / "full", tmp_path / "cut"
    code, _, err = run_cli("finetune", "-r", str(r), f"output_dir={full}")
    assert code == 0, err
    assert "reference log-probs of 80 pairs computed" in err
    assert _rows(full / "train_log.jsonl")[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    shutil.copytree(full, cut)  # as a run killed after its step-2 checkpoint leaves it
    shutil.rmtree(cut / "checkpoints" / "step-4")
    (cut / "run.json").write_text(json.dumps({"status": "running"}))
    (cut / "adapter_model.safetensors").unlink()
    (cut / "metrics.json").unlink()
    code, _, err = run_cli("finetune", "-r", str(r), f"output_dir={cut}", "--resume")
    assert code == 0, err
    assert "reference log-probs of 80 pairs reused" in err and "at step 2" in err
    a, b = load_file(full / "adapter_model.safetensors"), load_file(cut / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((x / "metrics.json").read_text()) for x in (full, cut))
    assert ma["final_metrics"] == mb["final_metrics"]


@pytest.mark.parametrize("loss", ["simpo", pytest.param("orpo", marks=pytest.mark.slow), pytest.param("ipo", marks=pytest.mark.slow)])
def test_the_other_losses_train(tiny, tmp_path, loss):
    from pref_helpers import recipe

    beta = {"simpo": 2.0, "orpo": 0.1, "ipo": 0.1}[loss]
    raw = recipe(tmp_path, tiny, dpo={"loss": loss, "beta": beta}, train={"max_steps": 3})
    raw["data"].pop("validation")  # no held-out pairs: trained and saved without an evaluation
    raw["data"]["validation_split"] = 0.0
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", raw)))
    assert code == 0, err
    assert ("reference: none (reference-free)" if loss != "ipo" else "adapter disabled") in err
    rows = _rows(tmp_path / "run" / "train_log.jsonl")
    assert len(rows) == 3 and all(math.isfinite(x["loss"]) and 0.0 <= x["rewards/accuracies"] <= 1.0 for x in rows)
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
