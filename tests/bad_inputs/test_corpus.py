"""The bad-input corpus (tests/bad_inputs/cases/*.yaml, one file per family): one line naming the file/key and what was expected,
exit code 2, no traceback, and every file that existed before left exactly as it was."""

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SHAKESPEARE, need, run_cli

CASE_FILES = sorted((ROOT / "tests" / "bad_inputs" / "cases").glob("*.yaml"))
CASES = [case for f in CASE_FILES for case in yaml.safe_load(f.read_text())]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Data, tokenizer and cache shared by all cases, and one finished run to copy from."""
    d = tmp_path_factory.mktemp("shared")
    (d / "data.txt").write_text(need(SHAKESPEARE).read_text()[:30_000])
    recipe = base_recipe(d, d / "finished")
    (d / "r.yaml").write_text(yaml.safe_dump(recipe))
    code, _, err = run_cli("pretrain", "-r", str(d / "r.yaml"))
    assert code == 0, err
    return d


def base_recipe(shared: Path, out: Path) -> dict:
    return {
        "task": "clm", "output_dir": str(out),
        "tokenizer": {"kind": "char", "path": str(shared / "tok")},
        "model": {"model_type": "gpt2", "config": {"n_layer": 1, "n_head": 2, "n_embd": 32}},
        "data": {"train": str(shared / "data.txt"), "validation_split": 0.1, "split_mode": "tail", "add_eos": False,
                 "block_size": 32, "cache_dir": str(shared / "cache")},
        "train": {"max_steps": 4, "batch_size": 4, "eval_every": 2, "precision": "fp32", "eval_batches": 2},
    }


def merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def fill(value, names: dict):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def prepare_state(kind: str, shared: Path, run: Path) -> None:
    shutil.copytree(shared / "finished", run)
    if kind == "unfinished-run":
        status = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**status, "status": "running"}))
    elif kind == "truncated-model":
        f = run / "model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif kind == "foreign-checkpoint":  # weights of another shape behind a matching recipe
        import torch
        from safetensors.torch import load_file, save_file

        for ckpt in (run / "checkpoints").iterdir():
            w = load_file(ckpt / "model.safetensors")
            save_file({k: torch.zeros([s + 1 for s in v.shape]) for k, v in w.items()}, ckpt / "model.safetensors")


def snapshot(folder: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_corpus_is_large_enough():
    assert len(CASES) >= 40 and len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, shared, tmp_path):
    names = {"tmp": str(tmp_path), "root": str(ROOT), "data": str(shared / "data.txt"), "recipe": str(tmp_path / "r.yaml")}
    for name, text in case.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for name, hexdata in case.get("binary", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(bytes.fromhex(hexdata))
    if "setup" in case:
        prepare_state(case["setup"], shared, tmp_path / "run")
    if "recipe_text" in case:
        if case["recipe_text"] is not None:
            (tmp_path / "r.yaml").write_text(case["recipe_text"])
    else:
        recipe = merge(base_recipe(shared, tmp_path / "run"), fill(case.get("recipe", {}), names))
        if "tokenizer-already-exists" == case["id"]:
            recipe["tokenizer"]["path"] = str(tmp_path / "tok")
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    before = snapshot(tmp_path)
    code, out, err = run_cli(*fill(case.get("args", ["pretrain", "-r", "{recipe}"]), names))
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert code == 2, f"exit {code}; stderr:\n{err}"
    assert len(errors) == 1 and "Traceback" not in err, err
    assert fill(case["expect"], names) in errors[0], errors[0]
    after = snapshot(tmp_path)
    assert {p: h for p, h in after.items() if p in before} == before, "an existing file was changed or removed"
