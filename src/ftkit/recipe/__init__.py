"""Recipes: the schema (one source of keys, overrides, validation, docs) and its loader.

Loaded on first use (module `__getattr__`): the families' recipe sections import `ftkit.recipe.fields`, and the
schema imports the registry, which imports those sections; an eager import here would close that circle.
"""

from __future__ import annotations

from importlib import import_module

_WHERE = {"Recipe": "ftkit.recipe.schema", "load_recipe": "ftkit.recipe.load", "validate": "ftkit.recipe.load",
          "apply_override": "ftkit.recipe.load", "dump_recipe": "ftkit.recipe.load"}

__all__ = ["Recipe", "load_recipe", "validate", "apply_override", "dump_recipe"]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(name)
