"""bench/suite.py's bookkeeping: the ratio each bench ends with, its JSON summary, the README table it writes."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_suite", ROOT / "bench" / "suite.py")
suite = importlib.util.module_from_spec(spec)
sys.modules["bench_suite"] = suite  # dataclasses look their module up while the file executes
spec.loader.exec_module(suite)


def test_every_bench_named_in_the_suite_exists_and_ends_with_a_ratio():
    for b in suite.BENCHES:
        text = (ROOT / "bench" / b.script).read_text()
        assert 'print(f"ratio ' in text, b.script
    assert {b.name for b in suite.BENCHES} >= {"pretrain", "ner", "sft", "vit", "reporting", "tokenize", "cls"}


def test_the_gpu_check_refuses_cleanly_without_cuda():
    import subprocess

    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the check would run")
    p = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PY": sys.executable}, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing was run"
    assert p.stdout == ""


def test_the_last_ratio_line_and_the_summary_are_read():
    out = 'repeat 0: ...\n{"precision": "bf16", "ftkit_gflops": 175.0}\npacking off ratio ftkit/trl (tokens/s): 2.38\nratio ftkit/trl: 2.38\n'
    assert suite.parse_ratio(out) == ("ftkit/trl", 2.38)
    assert suite.parse_ratio("no ratio here\nratio: x\n") is None
    assert suite.parse_summary(out) == {"precision": "bf16", "ftkit_gflops": 175.0}


def test_the_readme_table_is_replaced_between_its_markers_only():
    results = {"date": "2026-12-02", "quick": True, "machine": {"cpu": "AMD EPYC", "cores": 2, "torch": "2.13.0",
                                                                "matmul_peak_gflops": {"fp32": 140.0, "bf16": 350.0}},
               "benches": [{"what": "GPT tokens/s", "peer": "Trainer", "ratio": 1.1, "label": "ftkit/trainer", "target": 1.3,
                            "peak_share": 0.46, "precision": "bf16", "command": "python bench/peers/pretrain_throughput.py"},
                           {"what": "ViT images/s", "peer": "Trainer", "ratio": None, "label": None, "target": 1.2,
                            "peak_share": None, "precision": None, "command": "python bench/peers/vit_vs_hf.py"}]}
    text = f"# top\n{suite.BEGIN}\nold table\n{suite.END}\n# bottom\n"
    new = suite.replace_table(text, results)
    assert new.startswith("# top\n") and new.endswith("\n# bottom\n") and "old table" not in new
    assert "| GPT tokens/s | Trainer | **1.10** (ftkit/trainer); 46 % of the bf16 matmul peak | ≥ 1.3 |" in new
    assert "| ViT images/s | Trainer | failed |" in new and "`make bench-quick`" in new and "350 bf16" in new
    assert suite.replace_table(new, results) == new  # idempotent
    with pytest.raises(ValueError):
        suite.replace_table("no markers", results)
