"""Translation: `ftkit finetune --task seq2seq` + its evaluation against transformers' run_translation.py path, on
Multi30k German -> English.

Same model (a T5 from the config of recipes/multi30k-de-en.yaml, random weights), tokenizer (the joint Unigram
vocabulary ftkit trains first; the peer loads it), data (the first N training pairs; the first M test2016 pairs to
score), length caps, optimizer steps, batch size, lr, schedule, warmup, weight decay, label smoothing, seed,
precision, torch threads, and decoding (beam search, max new tokens). The peer is what run_translation.py does:
`tokenizer(inputs, text_target=targets, max_length=..., truncation=True)` in `datasets.map`,
`DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)`, `Seq2SeqTrainer` (its default random
order, `label_smoothing_factor`), then `trainer.predict(..., predict_with_generate)`, the outputs decoded and
stripped and scored with sacreBLEU (run_translation's `evaluate.load("sacrebleu")` is sacrebleu.corpus_bleu).
ftkit: its recipe settings (length-grouped batches, dynamic padding) and its evaluation (engine/loop.evaluate with
generation in eval_step). Both are scored with the same corpus BLEU (sacreBLEU, 13a, cased).

Each side runs in its own process (Accelerate keeps one global state per process). Timed: training (each side's
own train runtime) -> training pairs/s and tokens/s (pairs/s x the mean source + target tokens of a training
pair: both sides draw every pair once per epoch); evaluation from the pairs to the score (tokenizing, generating,
decoding, BLEU; not loading the model) -> generation-evaluation sentences/s.

    .venv/bin/python bench/peers/seq2seq_vs_hf.py [--train-pairs 29000] [--eval-pairs 1000] [--steps 200] [--threads N]

Last lines: `train tokens/s ratio ftkit/hf: X.XX` and `eval sentences/s ratio ftkit/hf: X.XX` (> 1: ftkit faster),
and each side's BLEU.
"""

from __future__ import annotations

import argparse
import gzip
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
ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT.parent / "shared" / "data" / "multi30k" / "raw"
SETTINGS = {"batch_size": 64, "eval_batch_size": 64, "lr": 2e-3, "warmup_steps": 20, "weight_decay": 0.01, "seed": 0,
            "max_length": 64, "label_smoothing": 0.1, "num_beams": 4, "max_new_tokens": 64, "vocab_size": 8000}
MODEL = {"d_model": 256, "d_ff": 1024, "num_layers": 3, "num_decoder_layers": 3, "num_heads": 4, "d_kv": 64, "dropout_rate": 0.1}


def precision(choice: str) -> str:
    if choice != "auto":
        return choice
    from ftkit.engine.accel import resolve_precision

    return resolve_precision("auto")


def lines(split: str, lang: str, n: int) -> list[str]:
    with gzip.open(RAW / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(n)]


def write_pairs(tmp: Path, split: str, n: int) -> list[str]:
    paths = []
    for lang in ("de", "en"):
        p = tmp / f"{split}.{lang}"
        p.write_text("".join(l + "\n" for l in lines(split, lang, n)), encoding="utf-8")
        paths.append(str(p))
    return paths


def run_ftkit(tmp: Path, a, prec: str) -> dict:
    from ftkit.engine.accel import make_accelerator
    from ftkit.engine.batches import eval_batches
    from ftkit.engine.loop import evaluate
    from ftkit.models import saved
    from ftkit.recipe import validate
    from ftkit.workflows import evaluate as evaluate_wf
    from ftkit.workflows import train

    test = write_pairs(tmp, "test_2016_flickr", a.eval_pairs)
    raw = {"task": "seq2seq", "output_dir": str(tmp / "ftkit"),
           "tokenizer": {"kind": "unigram", "path": str(tmp / "tok"), "vocab_size": SETTINGS["vocab_size"]},
           "model": {"model_type": "t5", "config": MODEL},
           "data": {"train": [{"path": str(RAW / f"train.{lang}.gz"), "rows": a.train_pairs} for lang in ("de", "en")]},
           "seq2seq": {"max_source_length": SETTINGS["max_length"], "max_target_length": SETTINGS["max_length"],
                       "label_smoothing": SETTINGS["label_smoothing"],
                       "generation": {"num_beams": SETTINGS["num_beams"], "max_new_tokens": SETTINGS["max_new_tokens"]}},
           "train": {"max_steps": a.steps, "batch_size": SETTINGS["batch_size"], "lr": SETTINGS["lr"], "schedule": "linear",
                     "warmup_steps": SETTINGS["warmup_steps"], "weight_decay": SETTINGS["weight_decay"], "betas": [0.9, 0.999],
                     "seed": SETTINGS["seed"], "eval_every": 0, "log_every": 50, "precision": prec, "threads": a.threads,
                     "keep_checkpoints_at_end": 0}}
    summary = train.run(validate(raw), log=lambda *_: None)
    out = str(tmp / "ftkit")
    model = saved.load_model(out, registry.entry("seq2seq"))
    recipe = evaluate_wf.eval_recipe(out, "seq2seq", ",".join(test), None)
    acc = make_accelerator(prec, threads=a.threads)
    t0 = time.perf_counter()
    ev = evaluate_wf.setup(out, out, "seq2seq", recipe, ",".join(test), model, log=lambda *_: None)
    metrics = evaluate(acc, acc.prepare(model), ev.task, eval_batches(ev.items, SETTINGS["eval_batch_size"], ev.task.eval_collate, 0))
    eval_s = time.perf_counter() - t0
    return {"train_s": summary["train_runtime_s"], "train_pairs": summary["examples"], "steps": summary["steps"],
            "eval_s": eval_s, "eval_pairs": metrics["examples"], "bleu": metrics["bleu"],
            "mean_pair_tokens": _mean_pair_tokens(tmp / "tok", a.train_pairs)}


def _mean_pair_tokens(tok_dir: Path, n: int) -> float:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    de, en = lines("train", "de", n), lines("train", "en", n)
    cap = SETTINGS["max_length"]
    total = sum(min(len(s), cap) + min(len(t), cap) for s, t in zip(tok(de)["input_ids"], tok(en)["input_ids"]))
    return total / n


# ---- the peer: run_translation.py (transformers' examples/pytorch/translation), the parts that run here
def run_hf(tmp: Path, a, prec: str) -> dict:
    import datasets
    import numpy as np
    import sacrebleu
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        set_seed,
    )

    if a.threads:
        torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(str(tmp / "tok"))  # the vocabulary ftkit trained (same ids, same specials)
    set_seed(SETTINGS["seed"])
    config = AutoConfig.from_pretrained(str(tmp / "ftkit"))  # ftkit's T5 config: same sizes and special ids
    model = AutoModelForSeq2SeqLM.from_config(config)

    def preprocess(batch):  # run_translation's preprocess_function
        enc = tok(batch["de"], max_length=SETTINGS["max_length"], padding=False, truncation=True)
        enc["labels"] = tok(text_target=batch["en"], max_length=SETTINGS["max_length"], padding=False, truncation=True)["input_ids"]
        return enc

    train = datasets.Dataset.from_dict({"de": lines("train", "de", a.train_pairs), "en": lines("train", "en", a.train_pairs)})
    train = train.map(preprocess, batched=True, remove_columns=["de", "en"])
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp / "hf"), max_steps=a.steps, per_device_train_batch_size=SETTINGS["batch_size"],
        per_device_eval_batch_size=SETTINGS["eval_batch_size"], learning_rate=SETTINGS["lr"], lr_scheduler_type="linear",
        warmup_steps=SETTINGS["warmup_steps"], weight_decay=SETTINGS["weight_decay"], seed=SETTINGS["seed"],
        label_smoothing_factor=SETTINGS["label_smoothing"], bf16=prec == "bf16", use_cpu=True, save_strategy="no",
        eval_strategy="no", report_to=[], logging_steps=50, disable_tqdm=True, dataloader_num_workers=0,
        predict_with_generate=True, generation_num_beams=SETTINGS["num_beams"])
    collator = DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train, data_collator=collator, processing_class=tok)
    out = trainer.train()
    t0 = time.perf_counter()
    src, refs = lines("test_2016_flickr", "de", a.eval_pairs), lines("test_2016_flickr", "en", a.eval_pairs)
    test = datasets.Dataset.from_dict({"de": src, "en": refs}).map(preprocess, batched=True, remove_columns=["de", "en"])
    pred = trainer.predict(test, max_new_tokens=SETTINGS["max_new_tokens"], num_beams=SETTINGS["num_beams"])
    ids = np.where(pred.predictions != -100, pred.predictions, tok.pad_token_id)
    hyps = [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    eval_s = time.perf_counter() - t0
    return {"train_s": out.metrics["train_runtime"], "train_pairs": out.global_step * SETTINGS["batch_size"],
            "steps": out.global_step, "eval_s": eval_s, "eval_pairs": len(hyps), "bleu": bleu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-pairs", type=int, default=29000)
    ap.add_argument("--eval-pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of each side (default: torch's choice)")
    ap.add_argument("--side", choices=["ftkit", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        fn = run_ftkit if a.side == "ftkit" else run_hf
        print(json.dumps(fn(Path(a.tmp), a, a.precision)))
        return
    prec = precision(a.precision)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("ftkit", "hf"):  # ftkit first: it trains the tokenizer both use
            args = [sys.executable, __file__, "--side", side, "--tmp", tmp, "--precision", prec, "--steps", str(a.steps),
                    "--train-pairs", str(a.train_pairs), "--eval-pairs", str(a.eval_pairs)]
            proc = subprocess.run(args + (["--threads", str(a.threads)] if a.threads else []), capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    f, h = results["ftkit"], results["hf"]
    tokens = f["mean_pair_tokens"]
    print(f"Multi30k de->en: T5 {MODEL['num_layers']}+{MODEL['num_decoder_layers']} layers, d_model {MODEL['d_model']}, "
          f"random weights; {a.steps} steps of {SETTINGS['batch_size']} on the first {a.train_pairs:,} pairs "
          f"({tokens:.1f} source + target tokens per pair); test2016: the first {a.eval_pairs:,} pairs, beam "
          f"{SETTINGS['num_beams']}; {prec}; threads {a.threads or 'default'}")
    for name, r in (("ftkit", f), ("hf", h)):
        pps = r["train_pairs"] / r["train_s"]
        print(f"{name:<6}: train {r['train_pairs']:,} pairs in {r['train_s']:.1f} s ({pps:.1f} pairs/s, {pps * tokens:,.0f} tokens/s); "
              f"eval {r['eval_pairs']:,} sentences in {r['eval_s']:.1f} s ({r['eval_pairs'] / r['eval_s']:.2f}/s); "
              f"BLEU {r['bleu']:.2f}")
    print(f"train tokens/s ratio ftkit/hf: {(f['train_pairs'] / f['train_s']) / (h['train_pairs'] / h['train_s']):.2f}")
    print(f"eval sentences/s ratio ftkit/hf: {(f['eval_pairs'] / f['eval_s']) / (h['eval_pairs'] / h['eval_s']):.2f}")
    print(f"BLEU ftkit {f['bleu']:.2f} / hf {h['bleu']:.2f}")


if __name__ == "__main__":
    main()
