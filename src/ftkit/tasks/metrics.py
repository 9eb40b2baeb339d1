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

    return {"token_loss": TokenLoss}


def token_loss(loss_sum: float, count: int) -> dict:
    """loss and perplexity through evaluate (no network)."""
    metric = _metric_classes()["token_loss"]()
    return metric.compute(predictions=[float(loss_sum)], references=[int(count)])
