"""Sequence classification (single texts or pairs): dynamic padding, summed cross-entropy per example.

Batches are padded by `DataCollatorWithPadding` to their own longest item (never to a fixed
maximum); with the length-grouped order of engine/batches.py that makes padding nearly free.
SPEC: labelled rows (data.py) -> class names (from the training labels) -> a model whose head
matches them (models/classifier.py) -> tokenized items; evaluation adds per-class scores and the
confusion matrix (report.py).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data import vocab_coverage
from ftkit.engine.batches import by_length, length_grouped
from ftkit.engine.loop import check_metric
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.classifier import build_classifier, checkpoint_labels, input_names, length_cap
from ftkit.tasks.cls import data as labeled
from ftkit.tasks.cls.predict import predict
from ftkit.tasks.cls.report import confusion_png, render_table
from ftkit.tasks.metrics import classification_report
from ftkit.tasks.spec import EvalRequest, EvalSetup, Prepared, TaskSpec, sample_positions


class SequenceClassification(TaskBase):
    name = "cls"
    keep_best = True  # the saved model is the best evaluation's, not the last step's

    def __init__(self, tokenizer, labels: list[str]):
        from transformers import DataCollatorWithPadding

        self._pad = DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")
        self.set_labels(labels)

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        # metric -> greater is better; the first picks the best model by default
        self.metrics = {"accuracy": True, "f1": True, "mcc": True, "loss": False}
        if len(self.labels) == 2:
            self.metrics["binary_f1"] = True

    def collate(self, examples: list[dict], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return dict(self._pad(examples))  # no randomness: rng is unused

    def count_targets(self, batch) -> int:
        return int(batch["labels"].shape[0])

    @staticmethod
    def logits(model, batch) -> torch.Tensor:
        # labels stay out of the call: the model would add its own (mean) loss
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits

    def logits_and_targets(self, model, batch):
        return self.logits(model, batch).float(), batch["labels"]

    def loss(self, model, batch) -> torch.Tensor:
        # Sum, not mean: the engine divides by the examples of the whole accumulation window.
        return F.cross_entropy(self.logits(model, batch).float(), batch["labels"], reduction="sum")

    def eval_step(self, model, batch) -> dict:
        logits = self.logits(model, batch).float()
        labels = batch["labels"]
        return {"loss_sum": F.cross_entropy(logits, labels, reduction="sum").item(), "count": int(labels.shape[0]),
                "predictions": logits.argmax(-1).cpu().numpy(), "labels": labels.cpu().numpy()}

    def compute_metrics(self, totals) -> dict:
        """Scalar metrics first (logged each evaluation), then per-class scores and the confusion matrix."""
        n = int(totals["count"])
        report = classification_report(totals["predictions"], totals["labels"], len(self.labels))
        out = {k: report[k] for k in ("accuracy", "f1", "mcc", "binary_f1") if k in report}
        out["loss"] = float(totals["loss_sum"]) / max(n, 1)
        out["examples"] = n
        out["per_class"] = {name: {"precision": report["precision"][i], "recall": report["recall"][i],
                                   "f1": report["f1_per_class"][i], "support": report["support"][i]}
                            for i, name in enumerate(self.labels)}
        out["confusion_matrix"] = report["confusion_matrix"]
        return out


    def nothing_learned(self, metrics: dict) -> Optional[str]:
        # confusion_matrix rows are true classes, columns predicted ones (sklearn)
        predicted = np.asarray(metrics.get("confusion_matrix") or [[0]]).sum(axis=0)
        if len(self.labels) < 2 or int((predicted > 0).sum()) != 1:
            return None
        return (f"every one of the {int(predicted.sum()):,} validation examples was predicted "
                f"'{self.labels[int(predicted.argmax())]}'")


def encode_rows(rows, tokenizer, model, labels: list[str], cap: int) -> list[dict]:
    return labeled.encode(rows, tokenizer, cap, {n: i for i, n in enumerate(labels)}, input_names(model, tokenizer))


def prepare(recipe, tokenizer, accelerator, log) -> Prepared:
    train_rows, val_rows = labeled.train_and_validation(recipe.data, recipe.train.seed, log)
    labels = labeled.infer_labels(train_rows)
    if val_rows is not None:
        labeled.check_known(val_rows, labels, "data.train")
    model, labels = build_classifier(recipe, tokenizer, labels, log, problem_type="single_label_classification")
    task = SequenceClassification(tokenizer, labels)
    check_metric(recipe.train, task)  # a misspelt metric_for_best fails before the data is tokenized
    cap = length_cap(recipe.data.block_size, model.config, log)
    train_items = encode_rows(train_rows, tokenizer, model, labels, cap)
    val_items = by_length(encode_rows(val_rows, tokenizer, model, labels, cap)) if val_rows is not None else None
    log(labeled.describe_split("train", train_rows, train_items, cap))
    if val_rows is not None:
        log(labeled.describe_split("validation", val_rows, val_items, cap))
    log(f"cls | {len(labels)} classes | inputs {', '.join(input_names(model, tokenizer))}")
    coverage = vocab_coverage.coverage(tokenizer, vocab_coverage.first_words(train_rows.texts))
    log(vocab_coverage.describe(coverage))
    return Prepared(model, task, train_items, val_items, tokenizer, eval_seed=recipe.train.seed,
                    order=length_grouped(train_items), unit="examples, length-grouped",
                    summary={"labels": labels, "train_skipped_empty": len(train_rows.skipped), "vocabulary": coverage})


def evaluation(req: EvalRequest) -> EvalSetup:
    labels = checkpoint_labels(req.model.config, "cls")
    if labels is None:
        raise UserError(f"--model: {req.model_dir} is not a sequence classifier (architectures: "
                        f"{', '.join(req.model.config.architectures or ['none'])}); fine-tune it first with `ftkit finetune`")
    data = req.recipe.data
    if req.data is not None or req.split == "train":
        source, key = (req.data, "--data") if req.data is not None else (data.train, "data.train")
        rows = labeled.load_rows(source, data, key, log=req.log)
    else:
        rows = labeled.train_and_validation(data, req.recipe.train.seed, req.log)[1]
    labeled.check_known(rows, labels, "the model")
    pick = sample_positions(len(rows), req.sample)
    rows = rows if pick is None else rows.subset(pick)
    items = encode_rows(rows, req.preprocessor, req.model, labels, length_cap(data.block_size, req.model.config))
    items = by_length(items) if req.sample is None else items  # a sample keeps its drawn order
    return EvalSetup(SequenceClassification(req.preprocessor, labels), items, 0,
                     {"labels": labels, "skipped_empty": len(rows.skipped)}, confusion_png(req, labels, req.data or "validation"))


SPEC = TaskSpec(prepare=prepare, evaluation=evaluation, render=render_table, predict=predict)
