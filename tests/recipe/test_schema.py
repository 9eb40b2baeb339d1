"""The schema: unknown keys, wrong types, did-you-mean, overrides, shipped recipes, generated docs."""

from pathlib import Path

import pytest

from ftkit.errors import UserError
from ftkit.recipe import dump_recipe, load_recipe
from ftkit.recipe.load import all_keys

from conftest import ROOT, write_recipe

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.fixture
def recipe_file(tmp_path: Path, tiny_gpt_recipe: dict) -> Path:
    return write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)


def error_of(path, overrides=()) -> str:
    with pytest.raises(UserError) as e:
        load_recipe(path, overrides)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_valid_recipe_loads_with_defaults(recipe_file):
    r = load_recipe(recipe_file)
    assert r.name == "r" and r.train.grad_accum == 1 and r.train.schedule == "cosine"


def test_unknown_key_names_file_line_and_suggests(recipe_file):
    text = recipe_file.read_text().replace("  lr: 0.003", "  lrr: 0.003")
    recipe_file.write_text(text)
    msg = error_of(recipe_file)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "lrr" in l)
    assert msg.startswith(f"{recipe_file}:{line}: unknown key 'train.lrr'")
    assert "did you mean 'train.lr'" in msg


def test_unknown_top_level_section(recipe_file):
    assert "did you mean 'train'" in error_of(recipe_file, ["trian.lr=1"])


def test_unknown_capitalised_keys_are_named(recipe_file):
    # pydantic tags union branches with type names ('DataFile'): a key the user wrote is never taken for one
    assert "unknown key 'Train'; did you mean 'train'?" in error_of(recipe_file, ["Train.lr=1"])
    assert "unknown key 'train.LR'" in error_of(recipe_file, ["train.LR=1"])


def test_errors_in_data_list_entries_name_the_entry_and_its_line(tmp_path, tiny_gpt_recipe):
    data = tiny_gpt_recipe["data"]["train"]
    tiny_gpt_recipe["data"]["train"] = [data, {"path": data, "rows": 0}]
    path = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if "rows" in l)
    msg = error_of(path)
    assert msg.startswith(f"{path}:{line}: 'data.train[1].rows': Input should be greater than or equal to 1 (got 0)")
    assert "more)" not in msg  # the str and list branches of data.train failing too is the same error
    tiny_gpt_recipe["data"]["train"][1] = {"path": data, "rowz": 5}
    path = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    assert "unknown key 'data.train[1].rowz'; did you mean 'data.train[1].rows'?" in error_of(path)


def test_wrong_type_names_key_and_value(recipe_file):
    msg = error_of(recipe_file, ["train.batch_size=many"])
    assert "(override train.batch_size=many)" in msg and "'train.batch_size'" in msg and "integer" in msg


def test_zero_and_negative_sizes_rejected(recipe_file):
    assert "greater than 0" in error_of(recipe_file, ["data.block_size=0"])
    assert "greater than 0" in error_of(recipe_file, ["train.lr=-1"])


def test_overrides_parse_yaml_values(recipe_file):
    r = load_recipe(recipe_file, ["train.lr=3e-4", "train.betas=[0.9, 0.98]", "data.streaming=false", "train.max_steps=7"])
    assert r.train.lr == 3e-4 and r.train.betas == (0.9, 0.98) and r.train.max_steps == 7


def test_model_config_is_free_form(recipe_file):
    r = load_recipe(recipe_file, ["model.config.n_layer=3"])
    assert r.model.config["n_layer"] == 3


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("task: clm\nmodel: [unclosed\n")
    msg = error_of(p)
    assert msg.startswith(str(p)) and "invalid YAML" in msg


def test_streaming_needs_budget(recipe_file):
    assert "train.max_steps or train.max_tokens" in error_of(recipe_file, ["data.streaming=true", "train.max_steps="])


def test_exactly_one_model_source(recipe_file):
    assert "exactly one" in error_of(recipe_file, ["model.from_pretrained=some/dir"])


def test_print_config_round_trips(recipe_file, tmp_path):
    r = load_recipe(recipe_file)
    again = tmp_path / "again.yaml"
    again.write_text(dump_recipe(r))
    assert load_recipe(again) == r


def test_every_key_is_documented():
    from ftkit.recipe.docs import render

    text = render()
    for key in all_keys():
        assert f"`{key}`" in text, key


def test_docs_file_is_current():
    from ftkit.recipe.docs import render

    assert (ROOT / "docs" / "recipes.md").read_text() == render() + "\n", "run: make docs"


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_shipped_recipes_validate(path):
    load_recipe(path)
