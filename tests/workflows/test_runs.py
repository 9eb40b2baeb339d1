"""`ftkit runs`: a table of the runs under a folder, newest first, finished or still going."""

import json

from conftest import fails, run_cli


def make_run(root, name, status, updated, summary=None, evals=()):
    d = root / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"status": status, "updated": updated, "step": 5}))
    (d / "recipe.yaml").write_text("task: cls\ntrain: {metric_for_best: accuracy}\n")
    if summary:
        (d / "metrics.json").write_text(json.dumps(summary))
    (d / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))


def test_runs_table_newest_first_with_running_and_finished(tmp_path):
    make_run(tmp_path, "old", "finished", "2026-01-01T10:00:00",
             {"task": "cls", "steps": 20, "total_steps": 20, "metric_for_best": "accuracy", "best": 0.875, "train_runtime_s": 61.2})
    make_run(tmp_path, "going", "running", "2026-01-02T10:00:00",
             evals=[{"step": 5, "elapsed_s": 12.5, "eval_accuracy": 0.61}])
    (tmp_path / "not-a-run").mkdir()
    code, out, _ = run_cli("runs", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["run", "task", "status", "steps", "best", "time", "updated"]
    assert lines[1].split()[:5] == ["going", "cls", "running", "5", "accuracy"] and "0.6100" in lines[1]
    assert lines[2].split()[:6] == ["old", "cls", "finished", "20/20", "accuracy", "0.8750"] and "61 s" in lines[2]
    assert len(lines) == 3
    code, out, _ = run_cli("runs", str(tmp_path), "--json")
    assert [r["run"] for r in json.loads(out)] == ["going", "old"]
    assert "is not a directory" in fails("runs", str(tmp_path / "nowhere"))
