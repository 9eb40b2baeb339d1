"""A tiny synthetic preference set and a tiny Llama (GGUF) for the dpo tests: the chosen reply answers the question,
the rejected one answers another; a 2-layer model learns the preference in a few dozen steps."""

from __future__ import annotations

import json
from pathlib import Path

QUESTIONS = [("What is two plus two?", "Four."), ("Name a colour.", "Blue, of course."),
             ("The capital of France?", "Paris."), ("What is the colour of the sky?", "Blue.")]


def synthetic_pairs(n: int, offset: int = 0) -> list[dict]:
    """n {prompt, chosen, rejected} rows; prompts differ by a number, so a split by prompt has many to choose from."""
    rows = []
    for i in range(offset, offset + n):
        q, a = QUESTIONS[i % len(QUESTIONS)]
        wrong = QUESTIONS[(i + 1 + (i // len(QUESTIONS)) % (len(QUESTIONS) - 1)) % len(QUESTIONS)][1]
        rows.append({"prompt": f"{q} ({i})", "chosen": a, "rejected": wrong})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_chat_model(d: Path):
    """(tokenizer, GGUF path) of a tiny Llama with ChatML's template (tests/tiny_gguf.py)."""
    from conftest import tiny_llama
    from tiny_gguf import tiny_chat_tokenizer, write_tiny_llama_gguf

    tok = tiny_chat_tokenizer(d / "tok")
    return tok, write_tiny_llama_gguf(tiny_llama(tok), tok, d / "tiny.gguf")


def recipe(tmp: Path, gguf: Path, train_rows: int = 64, val_rows: int = 16, **over) -> dict:
    r = {"task": "dpo", "output_dir": str(tmp / "run"), "model": {"from_pretrained": str(gguf)},
         "data": {"train": str(write_jsonl(tmp / "train.jsonl", synthetic_pairs(train_rows))),
                  "validation": str(write_jsonl(tmp / "dev.jsonl", synthetic_pairs(val_rows, offset=1000))),
                  "block_size": 128, "cache_dir": str(tmp / "cache")},
         "dpo": {"beta": 0.1},
         "finetune": {"strategy": "lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                      "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
         "train": {"max_steps": 4, "batch_size": 8, "lr": 5e-3, "eval_every": 2, "log_every": 1, "precision": "fp32",
                   "warmup_steps": 0, "weight_decay": 0.0}}
    for k, v in over.items():
        r[k] = {**r.get(k, {}), **v} if isinstance(v, dict) else v
    return r
