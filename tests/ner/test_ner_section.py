"""The `ner:` recipe section: the family's keys left `data:`; recipes that still write them there keep working."""

import pytest

from ftkit.errors import UserError
from ftkit.recipe import validate
from ftkit.recipe.schema import forget_moved_key_notes
from ftkit.workflows.evaluate import eval_recipe

BASE = {"task": "ner", "output_dir": "runs/x", "model": {"from_pretrained": "m"}}


def test_old_data_keys_are_read_as_ner_keys_with_one_note(capsys):
    forget_moved_key_notes()
    raw = {**BASE, "data": {"train": "t.conll", "tag_scheme": "bioes", "tag_field": 2, "label_all_tokens": True}}
    recipe = validate(raw)
    assert (recipe.ner.tag_scheme, recipe.ner.tag_field, recipe.ner.label_all_tokens) == ("bioes", 2, True)
    assert "tag_scheme" not in type(recipe.data).model_fields  # the shared data section no longer holds them
    err = capsys.readouterr()
    assert err.out == ""  # stdout stays clean for `ftkit predict`
    assert "note: recipe key data.tag_scheme is now ner.tag_scheme" in err.err
    validate({**BASE, "data": {"train": "t.conll", "tag_scheme": "iob1"}})
    assert capsys.readouterr().err == ""  # once per key and process


def test_a_key_in_both_places_is_an_error():
    with pytest.raises(UserError, match=r"data.tag_scheme and ner.tag_scheme are both set; keep ner.tag_scheme"):
        validate({**BASE, "data": {"train": "t.conll", "tag_scheme": "bioes"}, "ner": {"tag_scheme": "iob2"}})


def test_new_keys_are_checked_by_the_section():
    with pytest.raises(UserError, match=r"ner.tag_scheme"):
        validate({**BASE, "data": {"train": "t.conll"}, "ner": {"tag_scheme": "bio"}})


def test_eval_data_options_reach_the_family_section(tmp_path):
    recipe = eval_recipe(str(tmp_path), "ner", "other.conll", None, {"format": "conll", "ner.tag_field": 3})
    assert recipe.data.format == "conll" and recipe.ner.tag_field == 3
    with pytest.raises(UserError, match=r"--data-option task.x=1: task is not a recipe section"):
        eval_recipe(str(tmp_path), "ner", "other.conll", None, {"task.x": 1})
