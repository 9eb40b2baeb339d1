"""Question answering end to end on real SQuAD slices with a tiny BERT: finetune -> eval (table, --json, the
predictions file) -> predict (JSON lines, --context) -> the model card's snippet; LoRA and freeze; exact --resume;
bad input of predict."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from conftest import DATA, fails, need, resumed_equals_uninterrupted, run_cli, write_recipe
from tiny_models import tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

SQUAD, SHIFTS = DATA / "squad_v1.1", DATA / "squadshifts_new_wiki"


def _lines(src: Path, dst: Path, n: int) -> Path:
    with open(need(src), encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def qa_recipe(tmp: Path, out: str = "run", **train) -> dict:
    return {"task": "qa", "output_dir": str(tmp / out), "model": {"from_pretrained": str(tiny_bert_dir(tmp / "base"))},
            "data": {"train": str(_lines(SHIFTS / "train.jsonl", tmp / "train.jsonl", 64)),
                     "validation": str(_lines(SQUAD / "dev.jsonl", tmp / "dev.jsonl", 24))},
            "qa": {"max_length": 64, "doc_stride": 24},
            "train": {"max_steps": 6, "batch_size": 8, "lr": 1e-3, "eval_every": 0, "log_every": 2, "precision": "fp32", **train}}


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("qa")
    code, _, err = run_cli("finetune", "-r", str(write_recipe(d / "r.yaml", qa_recipe(d))))
    assert code == 0, err
    assert "64 questions on" in err and "features (question + context windows)" in err
    return d


def test_eval_table_json_and_predictions_file(qa_run):
    run = qa_run / "run"
    final = json.loads((run / "metrics.json").read_text())["final_metrics"]
    code, out, err = run_cli("eval", "--model", str(run), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["f1"] == pytest.approx(final["f1"]) and result["exact_match"] == pytest.approx(final["exact_match"])
    assert result["questions"] == 24 and result["features"] >= 24
    preds = json.loads(Path(result["predictions"]).read_text())
    refs = {json.loads(line)["id"] for line in (qa_run / "dev.jsonl").read_text().splitlines()}
    assert set(preds) == refs
    code, out, err = run_cli("eval", "--model", str(run))  # the table; a second predictions file, the first kept
    assert code == 0, err
    assert re.search(r"^F1\s+\d+\.\d\d$", out, re.M) and "exact match" in out
    assert (run / "predictions-validation.json").read_text() == json.dumps(preds, ensure_ascii=False)
    assert (run / "predictions-validation-2.json").is_file()


def test_predict_json_lines_and_context_file(qa_run, tmp_path):
    run = qa_run / "run"
    rows = [json.loads(line) for line in (qa_run / "dev.jsonl").read_text().splitlines()[:5]]
    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps({"id": r["id"], "question": r["question"], "context": r["context"]}) + "\n" for r in rows))
    code, out, err = run_cli("predict", "--model", str(run), str(src))
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [g["id"] for g in got] == [r["id"] for r in rows] and [g["line"] for g in got] == [1, 2, 3, 4, 5]
    for g, r in zip(got, rows):
        assert r["context"][g["start"]:g["end"]] == g["answer"] != "" and 0 < g["score"] <= 1
    ctx = tmp_path / "ctx.txt"
    ctx.write_text(rows[0]["context"], encoding="utf-8")
    stdin = io.StringIO(f"{rows[0]['question']}\n\n{rows[1]['question']}\n")
    import sys

    old = sys.stdin
    sys.stdin = stdin
    try:
        code, out, err = run_cli("predict", "--model", str(run), "--context", str(ctx))
    finally:
        sys.stdin = old
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [g["line"] for g in got] == [1, 3]
    assert all(rows[0]["context"][g["start"]:g["end"]] == g["answer"] for g in got)


def test_predict_bad_input_fails_with_one_line(qa_run, tmp_path):
    run = qa_run / "run"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who?", "context": "Ann."}\n{"context": "Ann met Bob."}\n')
    assert f"{bad}:2: no 'question' text" in fails("predict", "--model", str(run), str(bad))
    bad.write_text("Who met Bob?\n")
    assert f"{bad}:1: not a JSON object" in fails("predict", "--model", str(run), str(bad))
    assert "--context: not found" in fails("predict", "--model", str(run), "--context", str(tmp_path / "none.txt"), str(bad))


def test_the_model_card_snippet_runs(qa_run):
    """transformers 5 has no question-answering pipeline: the card's code answers from the context by itself."""
    run = qa_run / "run"
    card = (run / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    assert "pipeline(" not in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "card", "exec"), {})  # noqa: S102 (the card's own code, on the model just trained)
    answer = out.getvalue().strip()
    assert answer and answer in "Hamlet is a tragedy written by William Shakespeare around 1600."


@pytest.mark.parametrize("strategy", [{"strategy": "lora", "lora_r": 4}, {"strategy": "freeze", "freeze_embeddings": True,
                                                                          "freeze_layers": 1}])
def test_lora_and_freeze_train_and_answer(strategy, tmp_path):
    raw = qa_recipe(tmp_path, max_steps=2)
    raw["finetune"] = strategy
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", raw)))
    assert code == 0, err
    run = tmp_path / "run"
    assert (run / "adapter_config.json").is_file() == (strategy["strategy"] == "lora")
    code, out, err = run_cli("eval", "--model", str(run), "--json")
    assert code == 0, err
    assert json.loads(out)["f1"] == pytest.approx(json.loads((run / "metrics.json").read_text())["final_metrics"]["f1"])
    src = tmp_path / "q.jsonl"
    src.write_text(json.dumps({"question": "Who met Bob?", "context": "Ann met Bob in Rome."}) + "\n")
    code, out, err = run_cli("predict", "--model", str(run), str(src))
    assert code == 0, err
    g = json.loads(out)
    assert "Ann met Bob in Rome."[g["start"]:g["end"]] == g["answer"]


def test_resume_is_exact_for_qa(tmp_path):
    # evaluated at the end only: a best model of step 4 would sit in best/, which a finished run has moved into place
    raw = qa_recipe(tmp_path, out="full", max_steps=8, eval_every=0, save_every=4, keep_checkpoints=5,
                    keep_checkpoints_at_end=5, dropout=0.1)
    resumed_equals_uninterrupted(write_recipe(tmp_path / "r.yaml", raw), tmp_path / "full", tmp_path / "cut", 4)


def test_squad_v2_trains_reports_the_null_threshold_and_predict_uses_it(tmp_path):
    """Every third question loses its answers (asked as if its paragraph did not hold them): with qa.version_2 the
    run reports HasAns / NoAns and the chosen threshold, `ftkit eval` reproduces it, predict reads it from metrics.json."""
    raw = qa_recipe(tmp_path, max_steps=2)
    for split in ("train", "validation"):
        path = Path(raw["data"][split])
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for i, r in enumerate(rows):
            if i % 3 == 0:
                r["answers"] = {"text": [], "answer_start": []}
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "need qa.version_2: true" in fails("finetune", "-r", str(write_recipe(tmp_path / "v1.yaml", raw)))
    raw["qa"]["version_2"] = True
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", raw)))
    assert code == 0, err
    final = json.loads((tmp_path / "run" / "metrics.json").read_text())["final_metrics"]
    assert final["NoAns_total"] == 8 and final["HasAns_total"] == 16
    assert final["null_threshold"] == final["best_f1_thresh"] and final["f1"] == pytest.approx(final["best_f1"])
    code, out, err = run_cli("eval", "--model", str(tmp_path / "run"))
    assert code == 0, err
    assert "NoAns f1" in out and "best F1" in out
    src = tmp_path / "q.jsonl"
    rows = [json.loads(line) for line in Path(raw["data"]["validation"]).read_text().splitlines()]
    src.write_text("".join(json.dumps({"question": r["question"], "context": r["context"]}) + "\n" for r in rows))
    code, out, err = run_cli("predict", "--model", str(tmp_path / "run"), str(src))
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    saved = {q: a for q, a in json.loads(next((tmp_path / "run").glob("predictions-validation*.json")).read_text()).items()}
    assert [g["answer"] for g in got] == [saved[r["id"]] for r in rows]  # predict answers as the evaluation did
    for g, r in zip(got, rows):
        assert bool(g.get("no_answer")) == (g["answer"] == "") and (g["answer"] == "" or r["context"][g["start"]:g["end"]] == g["answer"])
