"""Recipes: the schema (one source of keys, overrides, validation, docs) and its loader."""

from ftkit.recipe.load import apply_override, dump_recipe, load_recipe, validate
from ftkit.recipe.schema import Recipe

__all__ = ["Recipe", "load_recipe", "validate", "apply_override", "dump_recipe"]
