"""`ftkit finetune --task ner`: tagged sentences -> a token classifier, its Task and encoded items.

The run itself (batches, engine loop, best model, summary) is finetune.run's, shared with cls.
"""

from __future__ import annotations

from ftkit.data import tagged
from ftkit.data.tagged_items import check_tokenizer, encode
from ftkit.engine.loop import check_metric
from ftkit.models.classifier import build_classifier, input_names
from ftkit.recipe.schema import Recipe
from ftkit.tasks.ner import TokenClassification


def prepare_ner(recipe: Recipe, tokenizer, log):
    from ftkit.workflows.finetune import Prepared, length_cap, sorted_by_length

    tokenizer = check_tokenizer(tokenizer, "tokenizer" if recipe.tokenizer else "model.from_pretrained")
    train, val = tagged.train_and_validation(recipe.data, recipe.train.seed)
    labels = tagged.label_list(train.tags)
    if val is not None:
        tagged.check_known(val, labels, "data.train")
    model, labels = build_classifier(recipe, tokenizer, labels, log, task="ner")
    task = TokenClassification(tokenizer, labels, gold=val)
    check_metric(recipe.train, task)
    cap = length_cap(recipe, model, log)
    names = input_names(model, tokenizer)
    label2id = {n: i for i, n in enumerate(labels)}
    train_items, cut = encode(train, tokenizer, cap, label2id, names, recipe.data.label_all_tokens)
    log(tagged.describe("train", train) + (f"; {cut:,} longer than {cap} pieces cut into windows" if cut else ""))
    val_items = None
    if val is not None:
        val_items, cut = encode(val, tokenizer, cap, label2id, names)
        val_items = sorted_by_length(val_items)
        log(tagged.describe("validation", val) + (f"; {cut:,} longer than {cap} pieces cut into windows (every word scored)" if cut else ""))
    log(f"ner | {len(labels)} tags ({', '.join(labels[:7])}{', ...' if len(labels) > 7 else ''}) | inputs {', '.join(names)}"
        + (" | label_all_tokens" if recipe.data.label_all_tokens else ""))
    return Prepared(model, task, train_items, val_items, labels, {"train_sentences": len(train)}, tokenizer)
