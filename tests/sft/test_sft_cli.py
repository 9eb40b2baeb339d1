"""`ftkit finetune --task sft` end to end on real instruction data (GSM8K slices) with a tiny Llama read from a
GGUF file: LoRA training, held-out loss, generation evaluation, `ftkit chat` through stdin, `generate --chat`,
exact --resume, packing; a model that learns to answer *and to stop* (pad == eos); bad input."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import DATA, fails, need, run_cli, tiny_llama, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

pytest.importorskip("gguf")
GSM8K = DATA / "gsm8k"


def _jsonl_slice(src: Path, dst: Path, rows: int) -> Path:
    with open(need(src), encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(rows)), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny chat tokenizer and a tiny Llama written as GGUF (what model.from_pretrained reads)."""
    from tiny_gguf import tiny_chat_tokenizer, write_tiny_llama_gguf

    d = tmp_path_factory.mktemp("tiny-llm")
    tok = tiny_chat_tokenizer(d / "tok")
    return d, write_tiny_llama_gguf(tiny_llama(tok), tok, d / "tiny.gguf")


def _recipe(tmp: Path, gguf: Path, **train) -> dict:
    return {
        "task": "sft", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(gguf)},
        "data": {"train": str(_jsonl_slice(GSM8K / "train.jsonl", tmp / "train.jsonl", 40)),
                 "validation": str(_jsonl_slice(GSM8K / "test.jsonl", tmp / "dev.jsonl", 8)),
                 "format": "template", "block_size": 1024},
        "sft": {"prompt_template": "{question}", "response_template": "{answer}", "answer_pattern": "#### (-?[\\d,]+)",
                "answer_remove": ",", "max_new_tokens": 6},
        "finetune": {"strategy": "lora", "lora_r": 4, "target_modules": ["q_proj", "v_proj"]},
        "train": {"max_steps": 4, "batch_size": 4, "lr": 1e-3, "eval_every": 2, "log_every": 1, "precision": "fp32", **train},
    }


def test_sft_lora_from_gguf_train_eval_generate_chat(tiny, tmp_path, monkeypatch):
    _, gguf = tiny
    r = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, gguf))
    code, _, err = run_cli("finetune", "--task", "sft", "-r", str(r))
    assert code == 0, err
    run = tmp_path / "run"
    assert (run / "adapter_model.safetensors").is_file() and "chat_template" in \
        (run / "tokenizer_config.json").read_text() + "".join(p.name for p in run.iterdir())
    assert "conversations" in err and "trained" in err
    code, out, err = run_cli("eval", "--model", str(run), "--json")
    assert code == 0, err
    loss = json.loads(out)
    assert loss["task"] == "sft" and loss["target_tokens"] > 0 and loss["loss"] > 0

    code, out, err = run_cli("eval", "--model", str(run), "--generate", "--json", "--batch-size", "4")
    assert code == 0, err
    gen = json.loads(out)
    assert gen["examples"] == 8 and 0.0 <= gen["exact_match"] <= 1.0
    lines = [json.loads(x) for x in Path(gen["generations"]).read_text().splitlines()]
    assert len(lines) == 8 and {"prompt", "reference", "answer", "correct", "reply", "stopped"} <= set(lines[0])
    assert lines[0]["reference"] == "18"  # "#### 18": the pattern's group, commas removed

    code, out, err = run_cli("generate", "--model", str(run), "--chat", "--prompt", "What is two plus two?",
                             "--temperature", "0", "--max-new-tokens", "4")
    assert code == 0, err

    from ftkit.workflows.chat import Session, interactive

    session = Session(str(run), max_new_tokens=3, temperature=0.0, log=lambda *_: None)
    shown = io.StringIO()
    turns = interactive(session, io.StringIO("What is two plus two?\nAnd three?\n/reset\nName a colour.\n/exit\n"), shown,
                        log=lambda *_: None)
    assert turns == 3 and shown.getvalue().count("model> ") == 3 and "(new conversation)" in shown.getvalue()
    assert [m["role"] for m in session.messages] == ["user", "assistant"]  # /reset dropped the first two turns


def test_sft_learns_to_answer_and_to_stop(tiny, tmp_path):
    """Full fine-tuning of the tiny model on four question/answer pairs (pad == eos, as SmolLM2): the held-out loss
    falls, every generated answer is exact, and every reply ends with the end-of-turn token instead of running on."""
    d, gguf = tiny
    pairs = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."), ("Capital of France?", "Paris."),
             ("Is the sky blue?", "Of course.")]
    rows = "".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in pairs)
    (tmp_path / "qa.jsonl").write_text(rows * 8)
    (tmp_path / "dev.jsonl").write_text(rows)
    recipe = {"task": "sft", "output_dir": str(tmp_path / "run"), "model": {"from_pretrained": str(gguf)},
              "data": {"train": str(tmp_path / "qa.jsonl"), "validation": str(tmp_path / "dev.jsonl"), "block_size": 128},
              "sft": {"max_new_tokens": 12},
              "train": {"max_steps": 200, "batch_size": 8, "lr": 1e-2, "warmup_steps": 5, "eval_every": 50, "log_every": 50,
                        "precision": "fp32", "weight_decay": 0.0, "keep_checkpoints": 0}}
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    history = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert evals[-1] < 0.1 * evals[0]
    code, out, err = run_cli("eval", "--model", str(tmp_path / "run"), "--generate", "--json")
    assert code == 0, err
    gen = json.loads(out)
    assert gen["exact_match"] == 1.0 and gen["stopped_by_eos"] == 1.0


def test_resume_is_exact_for_sft(tiny, tmp_path):
    """Kill and --resume give bitwise the adapter of the uninterrupted run; a LoRA run's checkpoints hold the trainable
    (adapter) weights only, not the frozen base: resuming rebuilds the base from the recipe."""
    _, gguf = tiny
    recipe = _recipe(tmp_path, gguf, max_steps=6, eval_every=3, save_every=2, keep_checkpoints=5, keep_checkpoints_at_end=5)
    recipe["output_dir"] = str(tmp_path / "full")
    recipe["data"]["packing"] = True  # resume must also restore the packed order
    r = write_recipe(tmp_path / "r.yaml", recipe)
    code, _, err = run_cli("finetune", "-r", str(r))
    assert code == 0, err
    assert "packed blocks" in err
    full, cut = tmp_path / "full", tmp_path / "cut"
    ckpt = full / "checkpoints" / "step-2"
    saved, adapter = _checkpoint_tensors(ckpt), _checkpoint_tensors(full, "adapter_model.safetensors")
    # the adapter's own tensors (q_proj and v_proj of both layers, A and B), under the training model's names
    assert len(saved) == len(adapter) == 8 and all(".lora_A." in n or ".lora_B." in n for n in saved)
    assert (ckpt / "model.safetensors").stat().st_size < 2 * (full / "adapter_model.safetensors").stat().st_size
    weights = json.loads((ckpt / "trainer_state.json").read_text())["weights"]
    assert weights["saved"] == "trainable" and len(weights["frozen_sha256"]) == 64
    shutil.copytree(full, cut)
    for ckpt in (cut / "checkpoints").iterdir():
        if int(ckpt.name.split("-")[1]) > 2:
            shutil.rmtree(ckpt)
    (cut / "run.json").write_text(json.dumps({"status": "running"}))
    for f in ("adapter_model.safetensors", "metrics.json"):
        (cut / f).unlink()
    code, _, err = run_cli("finetune", "-r", str(r), f"output_dir={cut}", "--resume")
    assert code == 0, err
    assert "at step 2" in err
    from safetensors.torch import load_file

    a, b = load_file(full / "adapter_model.safetensors"), load_file(cut / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert run_cli("eval", "--model", str(cut), "--json")[0] == 0  # the saved run is the adapter directory it was


def _checkpoint_tensors(path: Path, name: str = "model.safetensors") -> dict:
    from safetensors.torch import load_file

    return load_file(path / name)


def test_a_full_checkpoint_of_a_lora_run_still_resumes(tiny, tmp_path, monkeypatch):
    """Checkpoints written before trainable-only ones (the whole model) resume as before, to the same adapter."""
    from safetensors.torch import load_file

    from ftkit.engine import checkpoint_weights

    _, gguf = tiny
    recipe = _recipe(tmp_path, gguf, max_steps=4, eval_every=2, save_every=2, keep_checkpoints=5, keep_checkpoints_at_end=5)
    recipe["output_dir"] = str(tmp_path / "old")
    r = write_recipe(tmp_path / "r.yaml", recipe)
    with monkeypatch.context() as m:  # as before: the whole model in every checkpoint
        m.setattr(checkpoint_weights.CheckpointWeights, "_on_save", lambda *a: None)
        m.setattr(checkpoint_weights.CheckpointWeights, "describe", lambda self: {"saved": "full"})
        assert run_cli("finetune", "-r", str(r))[0] == 0
    old = tmp_path / "old"
    assert any(".base_layer." in n for n in _checkpoint_tensors(old / "checkpoints" / "step-2"))
    want = load_file(old / "adapter_model.safetensors")
    shutil.rmtree(old / "checkpoints" / "step-4")  # as a run killed after step 2 leaves it
    (old / "run.json").write_text(json.dumps({"status": "running"}))
    for f in ("adapter_model.safetensors", "metrics.json"):
        (old / f).unlink()
    code, _, err = run_cli("finetune", "-r", str(r), "--resume")
    assert code == 0, err
    got = load_file(old / "adapter_model.safetensors")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_resume_refuses_a_base_that_changed(tiny, tmp_path):
    """The checkpoint holds no base: a base file replaced since the run started is refused in one line, not mixed in."""
    from transformers import AutoTokenizer

    from tiny_gguf import write_tiny_llama_gguf

    d, gguf = tiny
    base = shutil.copy(gguf, tmp_path / "base.gguf")
    r = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, Path(base), max_steps=2, eval_every=0))
    assert run_cli("finetune", "-r", str(r))[0] == 0
    tok = AutoTokenizer.from_pretrained(str(d / "tok"))
    write_tiny_llama_gguf(tiny_llama(tok, seed=1), tok, Path(base))
    line = fails("finetune", "-r", str(r), "--resume", "train.max_steps=4")
    assert "--resume: checkpoint" in line and "frozen base weights rebuilt from the recipe differ" in line


def test_bad_sft_inputs_fail_with_one_line(tiny, tmp_path):
    d, gguf = tiny
    base = _recipe(tmp_path, gguf)
    base["sft"]["prompt_template"] = "{question} {topic}"
    line = fails("finetune", "-r", str(write_recipe(tmp_path / "a.yaml", base)))
    assert "train.jsonl" in line and "'topic'" in line and "columns are: question, answer" in line

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}) + "\n"
                   + json.dumps({"messages": [{"role": "bot", "content": "hi"}]}) + "\n")
    base = _recipe(tmp_path, gguf)
    base["data"] = {"train": str(bad), "format": "messages"}
    line = fails("finetune", "-r", str(write_recipe(tmp_path / "b.yaml", base)))
    assert "bad.jsonl row 2: messages[0] has role 'bot'" in line

    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(d / "tok"))
    plain.chat_template = None
    plain.save_pretrained(str(tmp_path / "plain-tok"))
    (tmp_path / "plain-tok" / "chat_template.jinja").unlink(missing_ok=True)
    base = _recipe(tmp_path, gguf)
    base["tokenizer"] = {"path": str(tmp_path / "plain-tok")}
    line = fails("finetune", "-r", str(write_recipe(tmp_path / "c.yaml", base)))
    assert "sft.chat_template: the tokenizer has no chat template" in line

    base = _recipe(tmp_path, gguf)
    base["task"], base["data"]["format"] = "cls", "messages"
    assert "data.format messages is a layout of examples for task sft" in fails(
        "finetune", "-r", str(write_recipe(tmp_path / "d.yaml", base)))
    assert not (tmp_path / "run").exists()  # nothing was created by any of them


def test_ftkit_chat_reads_stdin_and_generate_chat_answers_once(tiny, tmp_path, monkeypatch):
    """`ftkit chat` as a user runs it, with its input piped in: replies streamed after `model> `, /reset, /exit."""
    import sys

    _, gguf = tiny
    r = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, gguf, max_steps=1, eval_every=0))
    assert run_cli("finetune", "-r", str(r))[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("Name a colour.\n/reset\nWhat is two plus two?\n/exit\nnever read\n"))
    code, out, err = run_cli("chat", "--model", str(tmp_path / "run"), "--max-new-tokens", "3", "--temperature", "0")
    assert code == 0, err
    assert out.count("model> ") == 2 and "(new conversation)" in out and "/reset" in err
    code, out1, err = run_cli("generate", "--model", str(tmp_path / "run"), "--chat", "--prompt", "Name a colour.",
                              "--temperature", "0", "--max-new-tokens", "3")
    assert code == 0, err
    assert "model> " + out1 in out  # greedy: the same first reply as in the chat, streamed the same way


def test_gradient_checkpointing_gives_the_same_losses(tiny, tmp_path):
    _, gguf = tiny
    losses = []
    for gc in (False, True):
        recipe = _recipe(tmp_path, gguf, max_steps=3, eval_every=1, gradient_checkpointing=gc)
        recipe["output_dir"] = str(tmp_path / f"run-{gc}")
        code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / f"r{gc}.yaml", recipe)))
        assert code == 0, err
        assert ("activations recomputed" in err) == gc
        rows = [json.loads(x) for x in (tmp_path / f"run-{gc}" / "metrics.jsonl").read_text().splitlines()]
        losses.append([v for r in rows for v in (r["train_loss"], r["eval_loss"])])
    assert len(losses[0]) == 6 and losses[0] == pytest.approx(losses[1], rel=1e-5)
