"""Training throughput: `ftkit pretrain` against the plain transformers.Trainer path, in one run.

Same model (GPT-2, 4 layers, 256 wide, 4 heads, block 256, batch 8), same data (tiny Shakespeare,
an 8k byte-level BPE trained by ftkit), same precision, same number of steps, no evaluation.
The Trainer side follows transformers' run_clm.py: datasets.map(tokenize) + group_texts + Trainer.
Steps 6..N are timed for both (a callback stamps the end of each step). Runs alternate (ftkit, trainer, ftkit, trainer, ...) so that load on a shared machine hits both;
the best of each is compared. Data preparation is excluded from both timings.

    .venv/bin/python bench/peers/pretrain_throughput.py [--steps 35] [--repeats 2] [--precision bf16]

Last line: `ratio ftkit/trainer: X.XX`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
MODEL = {"n_layer": 4, "n_embd": 256, "n_head": 4}
BLOCK, BATCH = 256, 8


def recipe_dict(tmp: Path, steps: int, precision: str) -> dict:
    return {
        "task": "clm", "output_dir": str(tmp / "ftkit-run"),
        "tokenizer": {"kind": "bpe", "vocab_size": 8000, "path": str(tmp / "tok")},
        "model": {"model_type": "gpt2", "config": dict(MODEL)},
        "data": {"train": str(DATA), "block_size": BLOCK, "cache_dir": str(tmp / "cache"), "add_eos": False},
        "train": {"max_steps": steps, "batch_size": BATCH, "lr": 3e-4, "warmup_steps": 0, "eval_every": 0,
                  "log_every": 10, "precision": precision, "seed": 0, "weight_decay": 0.1, "grad_clip": 1.0},
    }


WARMUP = 5  # steps not timed (allocator and kernel warm-up), as in the stack probe


def timed_tokens_per_s(stamps: list[float], steps: int) -> float:
    """Tokens/s over steps WARMUP+1 .. steps, from the wall-clock time at the end of each step."""
    return (steps - WARMUP) * BATCH * BLOCK / (stamps[steps - 1] - stamps[WARMUP - 1])


def run_ftkit(tmp: Path, steps: int, precision: str, i: int) -> dict:
    from ftkit.recipe import validate
    from ftkit.workflows import train

    raw = recipe_dict(tmp, steps, precision)
    raw["output_dir"] = str(tmp / f"ftkit-run-{i}")
    stamps: list[float] = []
    summary = train.run(validate(raw), log=lambda *_: None, on_step=lambda _p: stamps.append(time.perf_counter()))
    return {"tokens_per_s": timed_tokens_per_s(stamps, steps), "flops_per_token": summary["flops_per_token"]}


def trainer_dataset(tmp: Path, tokenizer):
    """run_clm.py's preparation: load_dataset('text') -> map(tokenize) -> map(group_texts)."""
    from datasets import load_dataset

    raw = load_dataset("text", data_files=str(DATA), split="train", keep_linebreaks=True)
    tok = raw.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])

    def group_texts(examples):
        concat = {k: sum(examples[k], []) for k in examples}
        total = (len(concat["input_ids"]) // BLOCK) * BLOCK
        out = {k: [t[i:i + BLOCK] for i in range(0, total, BLOCK)] for k, t in concat.items()}
        out["labels"] = [x[:] for x in out["input_ids"]]
        return out

    return tok.map(group_texts, batched=True)


def run_trainer(tmp: Path, steps: int, precision: str, tokenizer, dataset, i: int) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments, set_seed

    set_seed(0)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=BLOCK, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **MODEL)
    model = GPT2LMHeadModel(cfg)
    args = TrainingArguments(
        output_dir=str(tmp / f"trainer-{i}"), per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=3e-4,
        weight_decay=0.1, max_grad_norm=1.0, lr_scheduler_type="cosine", warmup_steps=0, bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(), logging_steps=10, save_strategy="no", eval_strategy="no",
        report_to=[], dataloader_num_workers=0, disable_tqdm=True, seed=0)
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_a, **_k):
            stamps.append(time.perf_counter())

    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Stamp()])
    trainer.train()
    return {"tokens_per_s": timed_tokens_per_s(stamps, steps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    a = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"dataset not found: {DATA}")
    import torch
    from suite import matmul_peak  # this machine's peak in that dtype (a 2048^2 matmul)
    from transformers import AutoTokenizer

    # the peak is measured before and after the runs and the higher kept: on a shared host one reading can be
    # taken while another job runs (one read 378 GFLOP/s where the machine does 690-780)
    peaks = [matmul_peak(a.precision, repeats=20)]
    results: dict = {"ftkit": [], "trainer": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from ftkit import registry
        from ftkit.data.tokenizer_source import obtain_tokenizer
        from ftkit.recipe import validate

        obtain_tokenizer(validate(recipe_dict(tmp, a.steps, a.precision)), registry.entry("clm"), log=lambda *_: None)
        tokenizer = AutoTokenizer.from_pretrained(tmp / "tok")
        dataset = trainer_dataset(tmp, tokenizer)
        fpt = None
        for i in range(a.repeats):
            f = run_ftkit(tmp, a.steps, a.precision, i)
            fpt = f["flops_per_token"]
            results["ftkit"].append(f["tokens_per_s"])
            results["trainer"].append(run_trainer(tmp, a.steps, a.precision, tokenizer, dataset, i)["tokens_per_s"])
            print(f"repeat {i}: ftkit {results['ftkit'][-1]:,.0f} tok/s, trainer {results['trainer'][-1]:,.0f} tok/s", flush=True)
    best_f, best_t = max(results["ftkit"]), max(results["trainer"])
    gflops = best_f * fpt / 1e9
    peak = max(peaks + [matmul_peak(a.precision, repeats=20)])
    print(json.dumps({"steps": a.steps, "precision": a.precision, "threads": torch.get_num_threads(),
                      "ftkit_tokens_per_s": round(best_f), "trainer_tokens_per_s": round(best_t),
                      "flops_per_token": fpt, "ftkit_gflops": round(gflops, 1), "matmul_peak_gflops": round(peak, 1),
                      "fraction_of_matmul_peak": round(gflops / peak, 3), "runs": results}))
    print(f"ratio ftkit/trainer: {best_f / best_t:.2f}")


if __name__ == "__main__":
    main()
