"""Classification metrics against values worked out by hand."""

import math

import pytest

from ftkit.tasks.metrics import classification_report


def test_mcc_f1_and_accuracy_of_a_known_confusion():
    # 2 classes, positive = 1: TP 6, TN 3, FP 1, FN 2
    refs = [1] * 6 + [0] * 3 + [0] + [1] * 2
    preds = [1] * 6 + [0] * 3 + [1] + [0] * 2
    r = classification_report(preds, refs, 2)
    assert r["accuracy"] == pytest.approx(9 / 12)
    assert r["mcc"] == pytest.approx((6 * 3 - 1 * 2) / math.sqrt(7 * 8 * 4 * 5))  # 0.4781
    assert r["binary_f1"] == pytest.approx(2 * 6 / (2 * 6 + 1 + 2))  # F1 of class 1
    f1_neg = 2 * 3 / (2 * 3 + 2 + 1)
    assert r["f1"] == pytest.approx((f1_neg + r["binary_f1"]) / 2)  # macro
    assert r["confusion_matrix"] == [[3, 1], [2, 6]]


def test_mcc_is_zero_for_a_constant_guess_and_minus_one_for_the_opposite():
    refs = [0, 1, 0, 1, 1, 0]
    assert classification_report([1] * 6, refs, 2)["mcc"] == pytest.approx(0.0)
    assert classification_report([1 - r for r in refs], refs, 2)["mcc"] == pytest.approx(-1.0)
