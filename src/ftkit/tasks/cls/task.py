"""Sequence classification (single texts or pairs): dynamic padding, summed cross-entropy per example.

Batches are padded by `DataCollatorWithPadding` to their own longest item (never to a fixed
maximum); with the length-grouped order of engine/batches.py that makes padding nearly free.
SPEC: labelled rows (data.py) -> class names (from the training labels) -> a model whose head
matches them (models/classifier.py) -> tokenized items; evaluation adds per-class scores and the
confusion matrix (report.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data import vocab_coverage
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.classifier import build_classifier, checkpoint_labels, input_names, length_cap
from ftkit.tasks.cls import data as labeled
from ftkit.tasks.cls.entry import ENTRY
from ftkit.tasks.cls.predict import predict
from ftkit.tasks.cls.report import confusion_png, render_table
from ftkit.tasks.family import Encoded, Family
from ftkit.tasks.metrics import classification_report


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


@dataclass(frozen=True)
class Head:
    labels: list[str]  # class names in the head's order
    cap: int  # tokens per text (pair), the model's positions permitting


class Classification(Family[labeled.Rows]):
    """Labelled rows -> class names from the training labels -> a head that matches them -> tokenized rows."""

    entry = ENTRY

    def read(self, source, recipe, key, log):
        return labeled.load_rows(source, recipe.data, key, log=log)

    def split(self, run):
        train, val = labeled.train_and_validation(run.recipe.data, run.recipe.train.seed, run.log)
        if val is not None and run.training:
            labeled.check_known(val, labeled.infer_labels(train), "data.train")
        return train, val

    def build(self, run):
        model, labels = build_classifier(run.recipe, ENTRY, run.tokenizer, labeled.infer_labels(run.train), run.log,
                                         problem_type="single_label_classification")
        return model, Head(labels, length_cap(run.recipe.data.block_size, model.config, run.log))

    def recognise(self, run):
        labels = checkpoint_labels(run.model.config, ENTRY)
        if labels is None:
            raise UserError(f"--model: {run.request.model_dir} is not a sequence classifier (architectures: "
                            f"{', '.join(run.model.config.architectures or ['none'])}); fine-tune it first with `ftkit finetune`")
        return Head(labels, length_cap(run.recipe.data.block_size, run.model.config))

    def eval_rows(self, run):
        rows = super().eval_rows(run)
        labeled.check_known(rows, run.head.labels, "the model")
        return rows

    def make_task(self, run, gold):
        return SequenceClassification(run.tokenizer, run.head.labels)

    def encode(self, run, rows, part):
        items = encode_rows(rows, run.tokenizer, run.model, run.head.labels, run.head.cap)
        note = labeled.describe_split(part, rows, items, run.head.cap) if part != "data" else ""
        return Encoded(items, note, {"train_skipped_empty": len(rows.skipped)} if part == "train" else {})

    def ready(self, run):
        if run.training:
            run.kept["coverage"] = vocab_coverage.coverage(run.tokenizer, vocab_coverage.first_words(run.train.texts))

    def describe(self, run):
        return (f"cls | {len(run.head.labels)} classes | inputs {', '.join(input_names(run.model, run.tokenizer))}",
                vocab_coverage.describe(run.kept["coverage"]))

    def summary(self, run):
        return {"labels": run.head.labels, "vocabulary": run.kept["coverage"]}

    def eval_extras(self, run):
        return {"labels": run.head.labels, "skipped_empty": len(run.val.skipped)}

    def finish(self, run):
        req = run.request
        return confusion_png(req, run.head.labels, req.data or "validation")

    render = staticmethod(render_table)
    predict = staticmethod(predict)


SPEC = Classification()
