"""Metrics as in-code `evaluate.Metric` subclasses: `evaluate.load("accuracy")` needs the hub
and fails offline, so ftkit defines its metrics here (sklearn-backed where sklearn has them)."""

from __future__ import annotations

import math

import numpy as np


def _metric_classes():
    import datasets
    import evaluate

    class TokenLoss(evaluate.Metric):
        """Mean loss over predicted tokens and its perplexity, from per-batch sums and counts."""

        def _info(self):
            return evaluate.MetricInfo(
                description="mean token loss and perplexity", citation="", inputs_description="loss sums and counts",
                features=datasets.Features({"predictions": datasets.Value("float64"),
                                            "references": datasets.Value("int64")}))

        def _compute(self, predictions, references):
            n = int(np.sum(references))
            loss = float(np.sum(predictions)) / max(n, 1)
            return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": n}

    class AccuracyVsMajority(evaluate.Metric):
        """Accuracy of predicted ids (masked tokens, NSP labels) next to always predicting the most frequent
        reference: the best any constant guess can do on these references (chosen with hindsight, so a strong baseline)."""

        def _info(self):
            return evaluate.MetricInfo(
                description="accuracy and the majority-class baseline", citation="", inputs_description="predicted and true ids",
                features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}))

        def _compute(self, predictions, references):
            preds, refs = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
            if refs.size == 0:
                return {"accuracy": float("nan"), "majority_baseline_accuracy": float("nan"), "majority_id": -1, "count": 0}
            values, counts = np.unique(refs, return_counts=True)
            return {"accuracy": float(np.mean(preds == refs)), "majority_baseline_accuracy": float(counts.max() / refs.size),
                    "majority_id": int(values[counts.argmax()]), "count": int(refs.size)}

    return {"token_loss": TokenLoss, "accuracy_vs_majority": AccuracyVsMajority}


def accuracy_vs_majority(predictions, references) -> dict:
    """accuracy, majority_baseline_accuracy, majority_id, count through evaluate (no network)."""
    metric = _metric_classes()["accuracy_vs_majority"]()
    return metric.compute(predictions=np.asarray(predictions), references=np.asarray(references))


def token_loss(loss_sum: float, count: int) -> dict:
    """loss and perplexity through evaluate (no network)."""
    metric = _metric_classes()["token_loss"]()
    return metric.compute(predictions=[float(loss_sum)], references=[int(count)])


def _classification_metric_class():
    import datasets
    import evaluate

    class ClassificationReport(evaluate.Metric):
        """Accuracy, macro-F1, Matthews correlation, per-class precision / recall / F1 and the confusion
        matrix of predicted vs true class ids (sklearn). `num_labels` fixes the classes, so a class that
        never occurs in this data still gets its row and column (and zero scores, not an error)."""

        def _info(self):
            return evaluate.MetricInfo(
                description="classification report", citation="", inputs_description="predicted and true class ids",
                features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}))

        def _compute(self, predictions, references, num_labels: int):
            from sklearn.metrics import (
                accuracy_score,
                confusion_matrix,
                f1_score,
                matthews_corrcoef,
                precision_recall_fscore_support,
            )

            ids = list(range(num_labels))
            preds, refs = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
            p, r, f, s = precision_recall_fscore_support(refs, preds, labels=ids, zero_division=0)
            out = {"accuracy": float(accuracy_score(refs, preds)),
                   "f1": float(f1_score(refs, preds, labels=ids, average="macro", zero_division=0)),
                   "mcc": float(matthews_corrcoef(refs, preds)),
                   "precision": p.tolist(), "recall": r.tolist(), "f1_per_class": f.tolist(), "support": s.tolist(),
                   "confusion_matrix": confusion_matrix(refs, preds, labels=ids).tolist()}
            if num_labels == 2:  # GLUE's F1 for MRPC/QQP: the F1 of the positive class (id 1)
                out["binary_f1"] = float(f[1])
            return out

    return ClassificationReport


def classification_report(predictions, references, num_labels: int) -> dict:
    """accuracy, f1 (macro), mcc, binary_f1 (2 classes), per-class lists and the confusion matrix, through evaluate."""
    metric = _classification_metric_class()()
    return metric.compute(predictions=np.asarray(predictions, dtype=np.int64),
                          references=np.asarray(references, dtype=np.int64), num_labels=int(num_labels))
