"""`ftkit eval` of a token classifier: entity-level P/R/F1 (overall and per type) and token accuracy on words.

The data is read with the model's recipe's data settings (token/tag columns, tag scheme) unless the
command line overrides them; sentences longer than the length cap are windowed, so every word counts.
"""

from __future__ import annotations

import os
from typing import Optional

from ftkit.data import tagged
from ftkit.data.tagged_items import check_tokenizer, encode
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import eval_batches, log_sample
from ftkit.engine.loop import evaluate
from ftkit.errors import UserError
from ftkit.models.classifier import checkpoint_labels, input_names, max_positions
from ftkit.recipe.schema import Recipe
from ftkit.tasks.ner import TokenClassification


def run(model_dir: str, path: str, recipe: Recipe, data: Optional[str], batch_size: int = 32,
        max_batches: Optional[int] = None, precision: str = "fp32", log=print) -> dict:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ftkit.models import saved
    from ftkit.workflows.finetune import sorted_by_length

    hf_logging.disable_progress_bar()
    model = saved.load_model(path, "ner", log=log)
    labels = checkpoint_labels(model.config, "ner")
    if labels is None:
        raise UserError(f"--model: {model_dir} is not a token classifier; fine-tune one with `ftkit finetune --task ner`")
    tokenizer = check_tokenizer(AutoTokenizer.from_pretrained(path), "--model")
    if data is not None:
        sents = tagged.normalise(tagged.load(data, recipe.data, "--data"), recipe.data.tag_scheme)
    else:
        _, sents = tagged.train_and_validation(recipe.data, recipe.train.seed)
    tagged.check_known(sents, labels, "the model's tags")
    cap = min(recipe.data.block_size, max_positions(model.config) or recipe.data.block_size)
    items, cut = encode(sents, tokenizer, cap, {n: i for i, n in enumerate(labels)}, input_names(model, tokenizer))
    log(tagged.describe("data", sents) + (f"; {cut:,} longer than {cap} pieces cut into windows (every word scored)" if cut else ""))
    acc = make_accelerator(precision)
    model = acc.prepare(model)
    task = TokenClassification(tokenizer, labels, gold=sents)
    batches = eval_batches(sorted_by_length(items), batch_size, task.eval_collate, 0, limit=max_batches)
    note = log_sample(batches.sample, "--max-batches", log)
    metrics = evaluate(acc, model, task, batches, log)
    return {"model": os.path.normpath(model_dir), "task": "ner", "data": data or "validation data of its recipe",
            **metrics, "windowed_sentences": cut, **({"eval_sample": note} if note else {})}


def render_table(r: dict) -> str:
    heads = [("model", r["model"]), ("data", r["data"]),
             ("sentences", f"{r['sentences']:,} ({r['words']:,} words, {r['entities']:,} entities; "
                           f"{r['predicted_entities']:,} predicted)"),
             ("precision", f"{r['precision']:.4f}"), ("recall", f"{r['recall']:.4f}"), ("F1", f"{r['f1']:.4f}"),
             ("token accuracy", f"{r['accuracy']:.4f}"), ("loss", f"{r['loss']:.4f}")]
    hw = max(len(k) for k, _ in heads)
    lines = [f"{k:<{hw}}  {v}" for k, v in heads] + [""]
    w = max(8, *(len(n) for n in r["per_type"])) if r["per_type"] else 8
    lines.append(f"{'type':<{w}}  precision  recall      f1  support")
    for name, s in r["per_type"].items():
        lines.append(f"{name:<{w}}  {s['precision']:>9.4f}  {s['recall']:>6.4f}  {s['f1']:>6.4f}  {s['support']:>7,}")
    return "\n".join(lines)
