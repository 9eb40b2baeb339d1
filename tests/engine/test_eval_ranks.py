"""`ftkit eval --num-processes 2` equals `ftkit eval` on 1 process: the same metrics (float-order noise only) and the
same per-example outputs (sft's generated replies, qa's predictions file), with a short last batch that leaves
rank 1 a batch fewer (engine/loop.evaluate gathers the accumulators in the global batch order).

Each case trains a tiny model (2 steps) and evaluates it twice (~30-60 s on 2 cores): slow (`make test-all`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftkit import registry

from test_task_contract import CASES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BATCH = "3"  # no validation set here is a multiple of 3 x 2: the last global batch is cut short


def ftkit(*args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def trained(name: str, tmp: Path, **sections) -> Path:
    raw = {**CASES[name](tmp), **sections}
    recipe = tmp / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    ftkit(registry.entry(name).family, "-r", str(recipe))
    return Path(raw["output_dir"])


def evaluated(model: Path, one_args: tuple = (), two_args: tuple = ()) -> tuple[dict, dict]:
    one = ftkit("eval", "--model", str(model), "--json", "--batch-size", BATCH, *one_args)
    two = ftkit("eval", "--model", str(model), "--json", "--batch-size", BATCH, *two_args, "--num-processes", "2")
    assert "launching 2 process(es)" in two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)  # one JSON line: the main rank alone prints
    assert b.pop("processes") == 2 and "processes" not in a
    return a, b


def numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@pytest.mark.parametrize("name", ["ner", "mlm+nsp", "electra", "mim"])
def test_metrics_of_two_processes_equal_one(name, tmp_path):
    a, b = evaluated(trained(name, tmp_path))
    assert numbers(a) and numbers(b) == pytest.approx(numbers(a), rel=1e-5, abs=1e-6)


def test_qa_predictions_of_two_processes_equal_one(tmp_path):
    a, b = evaluated(trained("qa", tmp_path))
    assert a["questions"] == 16 and numbers(b) == pytest.approx(numbers(a), rel=1e-5, abs=1e-6)
    one, two = (json.loads(Path(r["predictions"]).read_text()) for r in (a, b))
    assert a["predictions"] != b["predictions"] and len(one) == 16 and one == two


def test_sft_generation_of_two_processes_equals_one(tmp_path):
    model = trained("sft", tmp_path, sft={"answer_pattern": "#### (-?[\\d,]+)", "answer_remove": ",", "max_new_tokens": 6})
    g1, g2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    a, b = evaluated(model, ("--generate", "--generations", str(g1)), ("--generate", "--generations", str(g2)))
    assert a["examples"] == b["examples"] == 8
    assert numbers(b) == pytest.approx(numbers(a), rel=1e-6)
    replies = [json.loads(x) for x in g1.read_text().splitlines()]
    assert [r["index"] for r in replies] == list(range(8)) and all(r["reply"] for r in replies)
    assert g2.read_text() == g1.read_text()  # every reply, answer and score, in order
