"""NER end to end on slices of WNUT-17: finetune -> eval (table, --json) -> predict (text, CoNLL) -> pipeline;
the entity metric against the `seqeval` package on real model output; exact --resume; bad input."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from ftkit.tasks.ner.metrics import entity_scores

from conftest import DATA, fails, need, resumed_equals_uninterrupted, run_cli, write_recipe
from tiny_models import MINILM, bert_config, minilm_tokenizer

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

WNUT = DATA / "wnut17"


def conll_slice(src: Path, dst: Path, sentences: int) -> Path:
    text = need(src).read_text(encoding="utf-8")
    blocks = [b for b in text.replace("\t\n", "\n").split("\n\n") if b.strip()][:sentences]
    dst.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ner")
    recipe = {
        "task": "ner", "output_dir": str(d / "run"), "model": {"from_pretrained": MINILM},
        "data": {"train": str(conll_slice(WNUT / "wnut17train.conll", d / "train.conll", 320)),
                 "validation": str(conll_slice(WNUT / "emerging.dev.conll", d / "dev.conll", 60)), "block_size": 64},
        "train": {"epochs": 1, "batch_size": 16, "lr": 3e-4, "weight_decay": 0.01, "schedule": "linear",
                  "warmup_steps": 2, "eval_every": 10, "log_every": 5, "precision": "fp32"},
    }
    r = write_recipe(d / "r.yaml", recipe)
    code, _, err = run_cli("finetune", "--task", "ner", "-r", str(r))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), err


def test_finetune_outputs(ner_run):
    _, out, err = ner_run
    assert "new token-classification head for 13 tags" in err and "train: 320 sentences" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric_for_best"] == "f1" and metrics["steps"] == 20 and metrics["train_sentences"] == 320
    evals = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert evals[0]["train_loss"] > evals[-1]["train_loss"]  # it learns
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"] and config["id2label"]["0"] == "O"
    assert set(config["id2label"].values()) == {"O"} | {f"{p}-{t}" for p in "BI" for t in
                                                      ("person", "location", "group", "corporation", "product", "creative-work")}


def test_eval_equals_seqeval_on_the_models_own_predictions(ner_run):
    """ftkit eval's F1 and predict's CoNLL column, scored by the seqeval package, agree exactly."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    d, out, _ = ner_run
    data = conll_slice(WNUT / "emerging.test.annotated", d / "test.conll", 120)
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(data), "--json", "--batch-size", "16")
    assert code == 0, err
    r = json.loads(stdout)
    code, stdout, err = run_cli("predict", "--model", str(out), str(data), "--format", "conll")
    assert code == 0, err
    stdout_conll = stdout
    gold, pred, g, p = [], [], [], []
    for line in stdout.splitlines() + [""]:
        if not line.strip():
            if g:
                gold.append(g), pred.append(p)
            g, p = [], []
            continue
        cols = line.split("\t")
        g.append(cols[-2]), p.append(cols[-1])
    assert len(gold) == r["sentences"] == 120 and sum(map(len, gold)) == r["words"]
    assert r["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    assert r["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
    assert r["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for typ, s in r["per_type"].items():
        if s["support"]:
            assert s["f1"] == pytest.approx(report[typ]["f1-score"]) and s["support"] == report[typ]["support"]
    code, table, _ = run_cli("eval", "--model", str(out), "--data", str(data))
    assert "F1" in table and "person" in table and f"{r['f1']:.4f}" in table
    # the same file in latin-1 (WNUT's accents): --encoding reads it, and the predicted column is the same
    latin = d / "test.latin1.conll"
    latin.write_bytes(data.read_text(encoding="utf-8").encode("latin-1", errors="replace"))
    code, again, err = run_cli("predict", "--model", str(out), str(latin), "--format", "conll", "--encoding", "latin-1")
    assert code == 0, err
    assert [l.split("\t")[-1] for l in again.splitlines()] == [l.split("\t")[-1] for l in stdout_conll.splitlines()]


def test_metric_equals_seqeval_on_a_random_models_predictions():
    """Untrained output is full of I- that start chunks, type switches and lone tags: the hard cases."""
    from seqeval.metrics import classification_report, f1_score
    from transformers import BertForTokenClassification

    from ftkit.recipe.schema import DataSection
    from ftkit.tasks.ner import data as tagged
    from ftkit.tasks.ner.items import encode
    from ftkit.tasks.ner.section import NerSection
    from ftkit.tasks.ner.task import TokenClassification

    tok = minilm_tokenizer()
    sents = tagged.normalise(tagged.load(str(need(WNUT / "emerging.dev.conll")), DataSection(train="-"), NerSection(), "d"), "iob2")
    labels = tagged.label_list(sents.tags)
    torch.manual_seed(0)
    model = BertForTokenClassification(bert_config(tok, num_labels=len(labels))).eval()
    items, _ = encode(sents, tok, 64, {n: i for i, n in enumerate(labels)}, ["input_ids", "attention_mask"])
    task = TokenClassification(tok, labels, gold=sents)
    totals = {"pred": [], "key": []}
    with torch.no_grad():
        for b in range(0, 320, 32):
            out = task.eval_step(model, task.eval_collate(items[b:b + 32], None))
            totals["pred"].append(out["pred"]), totals["key"].append(out["key"])
    import numpy as np

    gold, pred, _ = task.word_predictions({k: np.concatenate(v) for k, v in totals.items()})
    assert sum(t.startswith("I-") and (i == 0 or s[i - 1] == "O") for s in pred for i, t in enumerate(s)) > 20
    mine = entity_scores(gold, pred)
    assert mine["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12) and mine["predicted_entities"] > 100
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for typ, s in mine["per_type"].items():
        assert s["precision"] == pytest.approx(report[typ]["precision"]) and s["recall"] == pytest.approx(report[typ]["recall"])
    bioes = [["S-A", "B-A", "E-A", "I-A", "E-B", "O", "S-B"]], [["S-A", "B-A", "I-A", "E-A", "B-B", "E-B", "S-B"]]
    from seqeval.metrics import f1_score as f1

    assert entity_scores(*bioes)["f1"] == pytest.approx(f1(*bioes))


def test_pipeline_and_predict_agree_with_exact_character_offsets(ner_run, tmp_path):
    """A copy of the model biased to tag every word B-person / I-person, so there are entities to check."""
    from transformers import AutoModelForTokenClassification, pipeline

    _, out, _ = ner_run
    model = AutoModelForTokenClassification.from_pretrained(str(out))
    ids = model.config.label2id
    with torch.no_grad():
        model.classifier.bias.fill_(-10.0)
        model.classifier.bias[ids["B-person"]] = 10.0
    biased = tmp_path / "biased"
    model.save_pretrained(str(biased))
    for f in out.glob("tokenizer*"):
        shutil.copy(f, biased / f.name)
    text = "Kristiansand met  Obama in New York, then left."
    ents = pipeline("token-classification", model=str(biased), aggregation_strategy="simple")(text)
    assert ents and all(e["entity_group"] == "person" for e in ents)
    src = tmp_path / "in.txt"
    src.write_text(text + "\n\nok\n")
    code, stdout, err = run_cli("predict", "--model", str(biased), str(src))
    assert code == 0, err
    rows = [json.loads(l) for l in stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3] and rows[1]["entities"] == []
    got = rows[0]["entities"]
    assert [(e["start"], e["end"], e["type"]) for e in got] == [(e["start"], e["end"], e["entity_group"]) for e in ents]
    for e in got:
        assert e["text"] == text[e["start"]:e["end"]] and e["text"].strip() == e["text"]
    assert {e["text"] for e in got} >= {"Obama", "New", "York"}  # one piece each; a B- on every piece splits longer words
    assert text.index("Kristiansand") == got[0]["start"] and got[0]["end"] <= len("Kristiansand")


def test_resume_is_exact_for_ner(tmp_path):
    tok = minilm_tokenizer()
    tok_dir = tmp_path / "tok"
    tok.save_pretrained(str(tok_dir))
    recipe = {
        "task": "ner", "output_dir": str(tmp_path / "full"), "tokenizer": {"path": str(tok_dir)},
        "model": {"model_type": "bert", "config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                                    "intermediate_size": 64, "hidden_dropout_prob": 0.1}},
        "data": {"train": str(conll_slice(WNUT / "wnut17train.conll", tmp_path / "t.conll", 160)),
                 "validation": str(conll_slice(WNUT / "wnut17train.conll", tmp_path / "d.conll", 40)), "block_size": 64},
        "train": {"max_steps": 12, "batch_size": 8, "lr": 1e-3, "eval_every": 6, "save_every": 4, "keep_checkpoints": 5, "keep_checkpoints_at_end": 5,
                  "precision": "fp32", "log_every": 4},
    }
    resumed_equals_uninterrupted(write_recipe(tmp_path / "r.yaml", recipe), tmp_path / "full", tmp_path / "cut", 4,
                                 "best_metrics")


def test_bad_ner_inputs_fail_with_one_line(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Ann\tB-PER\nruns\tO\n\nBob\tB_PER\n")
    recipe = {"task": "ner", "output_dir": str(tmp_path / "o"), "model": {"from_pretrained": MINILM},
              "data": {"train": str(bad), "validation_split": 0.5}, "train": {"precision": "fp32"}}
    r = write_recipe(tmp_path / "r.yaml", recipe)
    assert f"{bad}:4: tag 'B_PER' is not IOB2" in fails("finetune", "-r", str(r))
    bad.write_text("Ann\tB-PER\nruns\tVB\tO\n")
    assert f"{bad}:2: 3 columns" in fails("finetune", "-r", str(r))
    assert "finetune.strategy prefix is for tasks clm, cls, dpo, not ner" in \
        fails("finetune", "-r", str(r), "finetune.strategy=prefix")
    assert not (tmp_path / "o").exists()
