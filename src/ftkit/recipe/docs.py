"""Render the recipe reference (docs/recipes.md) from the schema: the docs cannot drift from the code."""

from __future__ import annotations

import re

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ftkit.recipe.load import _section_type
from ftkit.recipe.schema import Recipe


def _type_name(annotation) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = re.sub(r"\bftkit(\.\w+)*\.(?=[A-Z])", "", text)  # a section's module (recipe/, a family package): the class name
    for junk in ("typing.", "<class '", "'>"):
        text = text.replace(junk, "")
    return text.replace("NoneType", "None")


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{value!r}`" if value is not None else "empty"


def _rows(model: type[BaseModel], prefix: str, sections: list) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        sub = _section_type(field.annotation)
        if sub is not None:
            sections.append((f"{prefix}{name}", sub, field.description or ""))
            continue
        cell = (field.description or "").replace("|", "\\|")  # a bare | would end the table cell
        rows.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | {cell} |")
    return rows


def render() -> str:
    out = ["# Recipe reference", "",
           "Generated from `src/ftkit/recipe/schema.py` (and the families' sections, `src/ftkit/tasks/*/section.py`) by "
           "`ftkit recipes docs`; do not edit by hand.",
           "Every key below can be overridden on the command line as `dotted.key=value`.", ""]
    sections: list = []
    top = _rows(Recipe, "", sections)
    out += ["## Top level", "", "| key | type | default | description |", "|---|---|---|---|", *top, ""]
    while sections:
        name, model, desc = sections.pop(0)
        out += [f"## `{name}`", ""] + ([desc, ""] if desc else [])
        out += ["| key | type | default | description |", "|---|---|---|---|", *_rows(model, name + ".", sections), ""]
    return "\n".join(out)


__all__ = ["render"]
