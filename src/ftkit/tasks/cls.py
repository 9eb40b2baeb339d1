"""Sequence classification (single texts or pairs): dynamic padding, summed cross-entropy per example.

Batches are padded by `DataCollatorWithPadding` to their own longest item (never to a fixed
maximum); with the length-grouped order of data/labeled.py that makes padding nearly free.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.tasks.metrics import classification_report


class SequenceClassification:
    name = "cls"
    keep_best = True  # the saved model is the best evaluation's, not the last step's

    def __init__(self, tokenizer, labels: list[str]):
        from transformers import DataCollatorWithPadding

        self.labels = list(labels)
        self._pad = DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")
        # metric -> greater is better; the first picks the best model by default
        self.metrics = {"accuracy": True, "f1": True, "mcc": True, "loss": False}
        if len(self.labels) == 2:
            self.metrics["binary_f1"] = True

    def collate(self, examples: list[dict], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return dict(self._pad(examples))  # no randomness: rng is unused

    eval_collate = collate

    def count_targets(self, batch) -> int:
        return int(batch["labels"].shape[0])

    @staticmethod
    def logits(model, batch) -> torch.Tensor:
        # labels stay out of the call: the model would add its own (mean) loss
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits

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
