"""`ftkit chat` replies (issue 36: replies that never stopped): a reply stops at the chat template's end-of-turn token
whatever the tokenizer calls eos; the conversation starts with the system prompt the model was trained with; the
repetition guard's options reach generate()."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import fails, run_cli, tiny_llama
from tiny_gguf import byte_bpe_tokenizer

# A template whose end of turn is not ChatML's <|im_end|> and not the tokenizer's eos (as Llama 3's <|eot_id|>).
EOT_TEMPLATE = ("{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|eot|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}")


def _eot_tokenizer(path: Path):
    return byte_bpe_tokenizer(path, ["What colour is snow? Snow is white.", "hello there"] * 10,
                              ["<|eot|>", "<|start|>", "<|endoftext|>"], EOT_TEMPLATE, bos="<|start|>", eos="<|endoftext|>",
                              unk="<|endoftext|>", vocab_size=280)


@pytest.fixture(scope="module")
def eot_model(tmp_path_factory) -> Path:
    """A tiny Llama whose every next token is <|eot|> (id 0): its final norm is zero, so all logits tie and greedy
    decoding takes the first id."""
    d = tmp_path_factory.mktemp("eot-model")
    tok = _eot_tokenizer(d)
    model = tiny_llama(tok)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.save_pretrained(str(d))
    return d


class _Calls:
    """Records the keyword arguments and outputs of every generate() call (the real generate still runs)."""

    def __init__(self, monkeypatch):
        from transformers.generation.utils import GenerationMixin

        self.kwargs, self.outputs = [], []
        original = GenerationMixin.generate

        def generate(model, *args, **kwargs):
            out = original(model, *args, **kwargs)
            self.kwargs.append(kwargs)
            self.outputs.append(out)
            return out

        monkeypatch.setattr(GenerationMixin, "generate", generate)


def test_end_of_turn_token_comes_from_the_template(eot_model, smol_tokenizer_dir):
    from transformers import AutoTokenizer

    from ftkit.data.chat_tokens import end_of_turn_ids, stop_ids

    tok = AutoTokenizer.from_pretrained(str(eot_model))
    eot = tok.convert_tokens_to_ids("<|eot|>")
    assert end_of_turn_ids(tok) == [eot] and eot in stop_ids(tok) and tok.eos_token_id in stop_ids(tok)
    smol = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    assert end_of_turn_ids(smol) == [smol.convert_tokens_to_ids("<|im_end|>")]
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"  # no special token after a reply
    assert end_of_turn_ids(tok) == []


def test_a_reply_stops_at_the_end_of_turn_token(eot_model, monkeypatch):
    from ftkit.workflows.chat import Session

    calls = _Calls(monkeypatch)
    session = Session(str(eot_model), max_new_tokens=20, temperature=0.0, log=lambda *_: None)
    assert session.reply("What colour is snow?") == "" and session.stopped
    prompt = calls.kwargs[0]["input_ids"].shape[1]
    assert calls.outputs[0].shape[1] == prompt + 1  # one token, the end of turn: not 20


def _smol_chat_dir(tmp_path: Path, smol_tokenizer_dir: Path, system: str | None, in_metrics: bool = False) -> Path:
    """A chat model directory as a run leaves it: tiny Llama weights, SmolLM2's tokenizer, recipe.yaml (+ metrics.json)."""
    from transformers import AutoTokenizer

    d = tmp_path / "run"
    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    tiny_llama(tok).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    data = {"train": "chat.jsonl", "format": "messages" if in_metrics else "prompt_completion"}
    sft = {"system_prompt": system} if system and not in_metrics else {}
    (d / "recipe.yaml").write_text(yaml.safe_dump({"task": "sft", "data": data, "sft": sft}))
    (d / "metrics.json").write_text(json.dumps({"task": "sft", "system_prompt": system if in_metrics else None}))
    return d


def _prompt_text(calls, smol_tokenizer_dir) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smol_tokenizer_dir)).decode(calls.kwargs[-1]["input_ids"][0])


@pytest.mark.parametrize("in_metrics", [False, True], ids=["sft.system_prompt", "shared-by-messages-rows"])
def test_chat_defaults_to_the_runs_system_prompt(tmp_path, smol_tokenizer_dir, monkeypatch, in_metrics):
    from ftkit.workflows.chat import Session

    system = "You sort news articles by topic."
    d = _smol_chat_dir(tmp_path, smol_tokenizer_dir, system, in_metrics)
    calls = _Calls(monkeypatch)
    logged = []
    session = Session(str(d), max_new_tokens=2, temperature=0.0, log=logged.append)
    session.reply("hello")
    assert session.messages[0] == {"role": "system", "content": system}
    text = _prompt_text(calls, smol_tokenizer_dir)
    assert text.startswith(f"<|im_start|>system\n{system}<|im_end|>") and "named SmolLM" not in text
    assert any("trained with" in line for line in logged)

    Session(str(d), system="", max_new_tokens=2, temperature=0.0, log=lambda *_: None).reply("hello")  # --system ''
    assert "named SmolLM" in _prompt_text(calls, smol_tokenizer_dir)  # the template's own default, as without one
    Session(str(d), system="Be brief.", max_new_tokens=2, temperature=0.0, log=lambda *_: None).reply("hello")
    assert _prompt_text(calls, smol_tokenizer_dir).startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_a_run_trained_without_a_system_prompt_chats_without_one(tmp_path, smol_tokenizer_dir, monkeypatch):
    from ftkit.workflows.chat import Session

    d = _smol_chat_dir(tmp_path, smol_tokenizer_dir, None)
    calls = _Calls(monkeypatch)
    session = Session(str(d), max_new_tokens=2, temperature=0.0, log=lambda *_: None)
    session.reply("hello")
    assert session.messages[0]["role"] == "user" and "named SmolLM" in _prompt_text(calls, smol_tokenizer_dir)


def _guard(kwargs):
    from ftkit.workflows.repetition import ReplyRepetitionGuard

    found = [p for p in kwargs.get("logits_processor") or [] if isinstance(p, ReplyRepetitionGuard)]
    assert len(found) == 1
    return found[0]


def test_the_repetition_guard_reaches_generate(tmp_path, smol_tokenizer_dir, monkeypatch):
    from ftkit.workflows.chat import REPETITION_PENALTY

    d = _smol_chat_dir(tmp_path, smol_tokenizer_dir, None)
    calls = _Calls(monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    code, out, err = run_cli("chat", "--model", str(d), "--max-new-tokens", "3", "--temperature", "0")
    assert code == 0, err
    guard = _guard(calls.kwargs[-1])
    assert guard.penalty == REPETITION_PENALTY == 1.1 and guard.ngram == 0
    assert guard.prompt_len == calls.kwargs[-1]["input_ids"].shape[1] and guard.exempt.tolist() == [2]
    assert "repetition_penalty" not in calls.kwargs[-1]  # not transformers' own: it would penalise <|im_end|> (below)
    assert calls.kwargs[-1]["eos_token_id"] == [2]  # SmolLM2: <|im_end|> is its eos and its end of turn
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    code, out, err = run_cli("chat", "--model", str(d), "--max-new-tokens", "3", "--temperature", "0",
                             "--repetition-penalty", "1.3", "--no-repeat-ngram-size", "3")
    assert code == 0, err
    assert (_guard(calls.kwargs[-1]).penalty, _guard(calls.kwargs[-1]).ngram) == (1.3, 3)
    code, out, err = run_cli("generate", "--model", str(d), "--chat", "--prompt", "hello", "--max-new-tokens", "3",
                             "--temperature", "0", "--no-repeat-ngram-size", "4")
    assert code == 0, err
    assert (_guard(calls.kwargs[-1]).penalty, _guard(calls.kwargs[-1]).ngram) == (1.1, 4)
    code, out, err = run_cli("generate", "--model", str(d), "--prompt", "Snow is", "--max-new-tokens", "3",
                             "--repetition-penalty", "1.2", "--no-repeat-ngram-size", "2")
    assert code == 0, err
    assert calls.kwargs[-1]["repetition_penalty"] == 1.2 and calls.kwargs[-1]["no_repeat_ngram_size"] == 2
    code, out, err = run_cli("generate", "--model", str(d), "--prompt", "Snow is", "--max-new-tokens", "3")
    assert code == 0, err
    assert "repetition_penalty" not in calls.kwargs[-1]  # plain generation: off by default, as before
    assert "--repetition-penalty: -1.0; expected a number > 0" in fails(
        "chat", "--model", str(d), "--repetition-penalty", "-1")


def test_the_guard_looks_at_the_reply_only_and_spares_the_stop_tokens():
    from ftkit.workflows.repetition import ReplyRepetitionGuard

    prompt = [5, 2, 7]  # 2: the end-of-turn token, in the prompt as in every chat prompt
    ids = torch.tensor([prompt + [7, 8, 9, 7, 8, 2]])
    scores = torch.full((1, 12), 2.0)
    scores[0, 9] = -2.0
    out = ReplyRepetitionGuard(len(prompt), penalty=2.0, exempt=(2,))(ids, scores.clone())
    assert out[0, 7] == out[0, 8] == 1.0 and out[0, 9] == -4.0  # the reply's tokens: penalised both ways
    assert out[0, 5] == 2.0 and out[0, 2] == 2.0  # a prompt-only token and the stop token: untouched
    ids = torch.tensor([prompt + [7, 8, 9, 7, 8]])
    out = ReplyRepetitionGuard(len(prompt), ngram=3, exempt=(2,))(ids, torch.zeros((1, 12)))
    assert out[0, 9] == -float("inf") and (out[0, :9] == 0).all()  # "7 8 9" again is blocked, nothing else


def test_the_training_summary_records_a_shared_system_prompt():
    from ftkit.tasks.sft.task import shared_system_prompt

    s = {"role": "system", "content": "Be brief."}
    u, a = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}
    assert shared_system_prompt([[s, u, a], [s, u, a]]) == "Be brief."
    assert shared_system_prompt([[s, u, a], [u, a]]) is None
    assert shared_system_prompt([[u, a]]) is None
