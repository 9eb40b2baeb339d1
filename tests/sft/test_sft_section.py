"""sft's layout keys left `data:` for its own section; recipes that still write them there keep working."""

import pytest

from ftkit.errors import UserError
from ftkit.recipe import validate
from ftkit.recipe.schema import forget_moved_key_notes

BASE = {"task": "sft", "output_dir": "runs/x", "model": {"from_pretrained": "m"}}


def test_old_data_spellings_are_read_as_sft_keys(capsys):
    forget_moved_key_notes()
    recipe = validate({**BASE, "data": {"train": "t.jsonl", "prompt_template": "{q}", "response_template": "{a}",
                                        "system_prompt": "Be brief.", "packing": True}})
    assert (recipe.sft.prompt_template, recipe.sft.response_template, recipe.sft.system_prompt, recipe.sft.packing) == \
        ("{q}", "{a}", "Be brief.", True)
    assert "note: recipe key data.packing is now sft.packing" in capsys.readouterr().err


def test_the_template_pair_is_checked_in_its_new_place():
    with pytest.raises(UserError, match="data.format template needs both sft.prompt_template and sft.response_template"):
        validate({**BASE, "data": {"train": "t.jsonl"}, "sft": {"prompt_template": "{q}"}})
