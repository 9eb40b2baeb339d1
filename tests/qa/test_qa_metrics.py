"""ftkit's SQuAD scores (tasks/qa/metrics.py) against the official scripts' logic, written here the way the official
evaluate-v1.1.py and evaluate-v2.0.py are laid out (over the SQuAD JSON, nested normalisation, per-question loops),
on real dev questions and answers that a reader really gives: exact spans, spans with neighbouring words, other
sentences of the paragraph, re-cased / re-punctuated answers, empty answers."""

from __future__ import annotations

import collections
import json
import re
import string

import numpy as np
import pytest

from ftkit.tasks.qa import metrics

from conftest import DATA, need


# --- the official v1.1 script's logic (evaluate-v1.1.py) ---
def ref_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def ref_f1_score(prediction, ground_truth):
    p, g = ref_normalize_answer(prediction).split(), ref_normalize_answer(ground_truth).split()
    num_same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if num_same == 0:
        return 0
    precision, recall = 1.0 * num_same / len(p), 1.0 * num_same / len(g)
    return (2 * precision * recall) / (precision + recall)


def ref_v1(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue  # "Unanswered question ... will receive score 0."
                truths = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                exact_match += max(ref_normalize_answer(pred) == ref_normalize_answer(t) for t in truths)
                f1 += max(ref_f1_score(pred, t) for t in truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# --- the official v2.0 script's logic (evaluate-v2.0.py) ---
def ref_get_tokens(s):
    return ref_normalize_answer(s).split() if s else []


def ref_compute_f1(a_gold, a_pred):
    gold_toks, pred_toks = ref_get_tokens(a_gold), ref_get_tokens(a_pred)
    num_same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision, recall = 1.0 * num_same / len(pred_toks), 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def ref_v2(dataset, preds, na_probs, na_prob_thresh):
    qid_to_has_ans = {qa["id"]: bool(qa["answers"]) for a in dataset for p in a["paragraphs"] for qa in p["qas"]}
    exact_raw, f1_raw = {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                gold = [a["text"] for a in qa["answers"] if ref_normalize_answer(a["text"])] or [""]
                exact_raw[qa["id"]] = max(int(ref_normalize_answer(a) == ref_normalize_answer(preds[qa["id"]])) for a in gold)
                f1_raw[qa["id"]] = max(ref_compute_f1(a, preds[qa["id"]]) for a in gold)

    def apply(scores):
        return {q: float(not qid_to_has_ans[q]) if na_probs[q] > na_prob_thresh else s for q, s in scores.items()}

    def find_best_thresh(scores):
        num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
        cur_score = best_score = num_no_ans
        best_thresh = 0.0
        for qid in sorted(na_probs, key=lambda k: na_probs[k]):
            if qid not in scores:
                continue
            diff = scores[qid] if qid_to_has_ans[qid] else (-1 if preds[qid] else 0)
            cur_score += diff
            if cur_score > best_score:
                best_score, best_thresh = cur_score, na_probs[qid]
        return 100.0 * best_score / len(scores), best_thresh

    exact, f1 = apply(exact_raw), apply(f1_raw)
    has = [q for q, h in qid_to_has_ans.items() if h]
    no = [q for q, h in qid_to_has_ans.items() if not h]
    out = {"exact_match": 100.0 * sum(exact.values()) / len(exact), "f1": 100.0 * sum(f1.values()) / len(f1),
           "HasAns_exact": 100.0 * sum(exact[q] for q in has) / len(has), "HasAns_f1": 100.0 * sum(f1[q] for q in has) / len(has),
           "NoAns_exact": 100.0 * sum(exact[q] for q in no) / len(no), "NoAns_f1": 100.0 * sum(f1[q] for q in no) / len(no)}
    out["best_exact"], out["best_exact_thresh"] = find_best_thresh(exact_raw)
    out["best_f1"], out["best_f1_thresh"] = find_best_thresh(f1_raw)
    return out


def _reader_answers(dataset, seed=0):
    """What a reader answers, drawn from each real question: its reference, a reference with the neighbouring words,
    re-cased and re-punctuated, the start of another sentence of the paragraph, only the first word, or nothing."""
    rng = np.random.default_rng(seed)
    preds = {}
    for article in dataset:
        for p in article["paragraphs"]:
            ctx = p["context"]
            words = ctx.split()
            for qa in p["qas"]:
                refs = [a for a in qa["answers"]] or [{"text": words[0], "answer_start": 0}]
                a = refs[int(rng.integers(len(refs)))]
                kind = int(rng.integers(6))
                start, end = a["answer_start"], a["answer_start"] + len(a["text"])
                if kind == 0:
                    preds[qa["id"]] = a["text"]
                elif kind == 1:
                    preds[qa["id"]] = ctx[max(0, start - 12):end + 15]
                elif kind == 2:
                    preds[qa["id"]] = "The " + a["text"].upper() + "."
                elif kind == 3:
                    i = int(rng.integers(len(words)))
                    preds[qa["id"]] = " ".join(words[i:i + int(rng.integers(1, 8))])
                elif kind == 4:
                    preds[qa["id"]] = a["text"].split()[0]
                else:
                    preds[qa["id"]] = ""
    return preds


@pytest.fixture(scope="module")
def dev():
    return json.loads(need(DATA / "squad_v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]


def test_v1_equals_the_official_script_on_the_whole_dev_set(dev):
    preds = _reader_answers(dev)
    preds.pop(next(iter(preds)))  # an unanswered question scores 0 and still counts
    refs = {qa["id"]: [a["text"] for a in qa["answers"]] for a in dev for p in a["paragraphs"] for qa in p["qas"]}
    ours, official = metrics.squad_v1(preds, refs), ref_v1(dev, preds)
    assert len(refs) == 10_570
    assert ours == pytest.approx(official, abs=1e-9)
    assert 20 < ours["exact_match"] < ours["f1"] < 90  # the mix really is a mix
    perfect = metrics.squad_v1({q: r[0] for q, r in refs.items()}, refs)
    assert perfect == {"exact_match": 100.0, "f1": 100.0}


def test_v2_equals_the_official_script_with_unanswerable_questions(dev):
    """A v2 set from real dev paragraphs: a third of the questions lose their answers (asked of the paragraph as if it
    did not hold them); null gaps drawn at random; every figure at a fixed threshold and the best thresholds."""
    rng = np.random.default_rng(1)
    data = json.loads(json.dumps(dev[:6]))
    for article in data:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                if rng.random() < 1 / 3:
                    qa["answers"] = []
    spans = _reader_answers(data, seed=2)
    # a best span is never empty (the null answer is the gap's business); one that normalises to "" would count as
    # "no answer" in the scores but as an answer in find_best_thresh (the official script's own inconsistency)
    spans = {q: s if metrics.normalize_answer(s) else "Paris" for q, s in spans.items()}
    gap = {q: float(rng.normal()) for q in spans}
    refs = {qa["id"]: [a["text"] for a in qa["answers"]] for a in data for p in a["paragraphs"] for qa in p["qas"]}
    for threshold in (0.0, 0.7, -1.2):
        ours = metrics.squad_v2(spans, gap, refs, threshold)
        official = ref_v2(data, spans, gap, threshold)
        assert {k: ours[k] for k in official} == pytest.approx(official, abs=1e-9)
        assert ours["null_threshold"] == threshold
    chosen = metrics.squad_v2(spans, gap, refs)  # no threshold: the best F1's
    assert chosen["null_threshold"] == chosen["best_f1_thresh"] and chosen["f1"] == pytest.approx(chosen["best_f1"])
    assert chosen["NoAns_total"] > 50 and chosen["HasAns_total"] > 100


def test_normalisation_follows_the_official_rules():
    assert metrics.normalize_answer("  The Denver-Broncos,  an  NFL team! ") == "denverbroncos nfl team"
    assert metrics.question_scores("the Broncos", ["Denver Broncos", "Broncos"]) == (1.0, 1.0)
    e, f = metrics.question_scores("Denver", ["Denver Broncos"])
    assert e == 0.0 and f == pytest.approx(2 * 1 * 0.5 / 1.5)
