"""A run trained with relative paths works from any directory and after being moved; a checkpoint directory
given as a model is refused with the path of the run's model."""

import json
import shutil

import pytest
import yaml

from conftest import fails, run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


def test_a_moved_run_still_evaluates_and_generates(tmp_path, tiny_gpt_recipe, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(tiny_gpt_recipe["data"]["train"], work / "corpus.txt")
    tiny_gpt_recipe.update(output_dir="runs/gpt")
    tiny_gpt_recipe["tokenizer"]["path"] = "runs/tok"
    tiny_gpt_recipe["data"].update(train="corpus.txt", cache_dir="cache")
    tiny_gpt_recipe["train"].update(max_steps=6, eval_every=3)
    monkeypatch.chdir(work)
    recipe = write_recipe(work / "r.yaml", tiny_gpt_recipe)
    code, _, err = run_cli("pretrain", "-r", str(recipe))
    assert code == 0, err
    saved = yaml.safe_load((work / "runs/gpt/recipe.yaml").read_text())
    assert saved["data"]["train"] == str(work / "corpus.txt") and saved["tokenizer"]["path"] == str(work / "runs/tok")
    code, out, err = run_cli("pretrain", "-r", str(recipe), "--resume", "train.max_steps=8")  # relative now, absolute saved
    assert code == 0 and "at step 6" in err, err

    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(work / "runs/gpt"), str(elsewhere))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("eval", "--model", str(elsewhere), "--json")  # its recipe's validation data
    assert code == 0, err
    assert json.loads(out)["loss"] > 0
    code, out, err = run_cli("generate", "--model", str(elsewhere), "--prompt", "ROMEO:", "--max-new-tokens", "5")
    assert code == 0 and out.startswith("ROMEO:"), err

    ckpt = next((elsewhere / "checkpoints").iterdir())
    line = fails("eval", "--model", str(ckpt))
    assert "is a resumable training checkpoint" in line and f"the run's model is {elsewhere.resolve()}" in line
