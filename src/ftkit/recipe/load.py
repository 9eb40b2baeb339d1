"""Load a recipe: YAML (safe_load) + `dotted.key=value` overrides, validated by the schema.

Errors name the file, the line of the offending key and what was expected, and suggest
the closest known key for typos. Pydantic's own messages are kept but put on one line.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ValidationError

from ftkit.errors import UserError
from ftkit.paths import PACKAGE_SCHEME, is_local, missing
from ftkit.recipe.schema import Recipe


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (), check_inputs: bool = False) -> Recipe:
    """The validated recipe; `check_inputs`: also that each local path it reads exists (recipe/inputs.py)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); expected a YAML recipe") from None
    try:
        raw = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of recipe keys at the top level, got {type(raw).__name__}")
    for item in overrides:
        key = apply_override(raw, item)
        for n in range(1, len(key)):
            lines.setdefault(key[:n], f"override {item}")
        lines[key] = f"override {item}"
    raw.setdefault("name", path.stem)
    recipe = validate(raw, source=str(path), lines=lines)
    if check_inputs:
        _check_inputs(recipe, str(path), lines)
    return recipe


def _check_inputs(recipe: Recipe, source: str, lines: dict) -> None:
    """One line for the first local input that is not there: `FILE:LINE: KEY: file not found: PATH`."""
    from ftkit.recipe.inputs import missing_inputs  # inputs.py imports the recipe package, whose __init__ imports this module

    try:
        absent = list(missing_inputs(recipe))
    except UserError as e:  # a pkg:// path whose package is not installed: the message names the key
        raise UserError(f"{source}: {e}") from None
    for key, path, what in absent:
        where = _where(source, _line_for(key, lines))
        problem = f"{_dotted(key)}: no file matches '{path}'" if what == "glob" else missing(path, _dotted(key), what)
        raise UserError(f"{where}: {problem}")


def validate(raw: dict, source: str = "<recipe>", lines: Optional[dict] = None) -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise UserError(_format_error(e, source, lines or {})) from None


def apply_override(raw: dict, item: str) -> tuple:
    """Set `a.b.c=value` in the raw recipe; the value is parsed as YAML (3e-4, true, [1, 2])."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"override {item!r}: expected dotted.key=value, e.g. train.lr=3e-4")
    parts = key.strip().split(".")
    parsed = parse_value(value)
    node = raw
    for i, part in enumerate(parts[:-1]):
        if _is_scalar_key(tuple(parts[: i + 1])):
            raise UserError(f"override {item!r}: {'.'.join(parts[:i + 1])} is not a section")
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"override {item!r}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = parsed
    return tuple(parts)


def parse_value(value: str) -> Any:
    """A command-line value as YAML (3e-4, true, [1, 2]); text YAML cannot read, or reads as nothing although it is
    not empty and no spelling of null (`|`, `>`: block-scalar marks; `#`: a comment), is kept as it was written
    (data.delimiter=| means the pipe)."""
    if not value.strip():
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if parsed in (None, "") and value.strip() not in ("null", "Null", "NULL", "~", "''", '""'):
        return value.strip()
    return parsed


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe, every default included, as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, default_flow_style=False)


def portable(recipe: Recipe) -> Recipe:
    """The recipe with every local path made absolute: a run's recipe.yaml then works from any directory
    (`ftkit eval` without --data reads its validation data). Hub ids and pkg:// paths stay as they are."""
    import os

    def fix(path):
        if not isinstance(path, str) or path.startswith(PACKAGE_SCHEME) or not is_local(path):
            return path
        return os.path.abspath(os.path.expanduser(path))

    def fix_files(spec):
        if isinstance(spec, list):
            return [fix(x) if isinstance(x, str) else x.model_copy(update={"path": fix(x.path)}) for x in spec]
        return fix(spec)

    d = recipe.data
    data = d.model_copy(update={"train": fix_files(d.train), "validation": fix_files(d.validation),
                                "cache_dir": fix(d.cache_dir)})
    update = {"data": data, "model": recipe.model.model_copy(update={"from_pretrained": fix(recipe.model.from_pretrained)})}
    if recipe.tokenizer is not None:
        update["tokenizer"] = recipe.tokenizer.model_copy(update={"path": fix(recipe.tokenizer.path)})
    return recipe.model_copy(update=update)


def all_keys(model: type[BaseModel] = Recipe, prefix: str = "") -> list[str]:
    """Every dotted key the schema knows (sections and leaves)."""
    keys = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        sub = _section_type(field.annotation)
        if sub is not None:
            keys.extend(all_keys(sub, dotted + "."))
    return keys


def _section_type(annotation: Any, deep: bool = False) -> Optional[type[BaseModel]]:
    """The section model a field holds; deep: also inside lists and nested unions (data.train's DataFile entries)."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    if deep:
        for c in getattr(annotation, "__args__", ()):
            found = _section_type(c, deep=True)
            if found is not None:
                return found
    return None


def _is_scalar_key(loc: tuple) -> bool:
    """A known schema key that holds a value, not a section or a free-form mapping (model.config)."""
    parent = _model_at(loc[:-1])
    if parent is None or loc[-1] not in parent.model_fields:
        return False
    annotation = parent.model_fields[loc[-1]].annotation
    return _section_type(annotation) is None and "dict" not in str(annotation)


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    model: Optional[type[BaseModel]] = Recipe
    for part in loc:
        if isinstance(part, int):  # an entry of a list: its model is the one found for the list
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _section_type(model.model_fields[part].annotation, deep=True)
    return model


def _key_path(loc: tuple, unknown_last: bool = False) -> tuple:
    """pydantic's error location without the tags it adds for union branches ('str', 'list[...]', 'DataFile'):
    only schema keys and list indices stay, and the last part when it is the unknown key (`unknown_last`)."""
    out: list = []
    model: Optional[type[BaseModel]] = Recipe
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
        elif model is not None and part in model.model_fields:
            out.append(part)
            model = _section_type(model.model_fields[part].annotation, deep=True)
        elif i == len(loc) - 1 and (unknown_last or not _is_branch_tag(part)):
            out.append(part)
    return tuple(out)


def _is_branch_tag(part: str) -> bool:
    return "[" in part or part in ("str", "int", "float", "bool", "dict", "list") or part[:1].isupper()


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _format_error(err: ValidationError, source: str, lines: dict) -> str:
    # Typos first: an unknown key often explains the other errors too. Then the deepest location: a value that
    # fits no branch of a union (data.train: a path or a list of entries) fails once per branch, and the branch
    # that got furthest (the entry's own key) says what is wrong.
    errors = err.errors()
    paths = [_key_path(x["loc"], x["type"] == "extra_forbidden") for x in errors]
    k = min(range(len(errors)), key=lambda i: (errors[i]["type"] != "extra_forbidden", -len(paths[i])))
    e, path = errors[k], paths[k]
    # the other branches' failures at the locations above this one are the same error, not more of them
    others = [p for i, p in enumerate(paths) if i != k and p != path[:len(p)]]
    key = _dotted(path) or "(top level)"
    where = _where(source, _line_for(path, lines))
    more = f" (and {len(others)} more)" if others else ""
    if e["type"] == "extra_forbidden":
        parent = _model_at(path[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean '{_dotted(path[:-1] + (close[0],))}'?" if close else f"; known keys here: {', '.join(known)}"
        return f"{where}: unknown key '{key}'{hint}{more}"
    if e["type"] == "missing":
        return f"{where}: missing required key '{key}'{more}"
    msg = e["msg"].removeprefix("Value error, ")
    got = e.get("input")
    shown = f" (got {got!r})" if e["loc"] and not isinstance(got, dict) else ""
    label = f"'{key}': " if e["loc"] else ""
    return f"{where}: {label}{msg}{shown}{more}"


def _where(source: str, line: Optional[int | str]) -> str:
    if isinstance(line, str):  # the key came from a command-line override
        return f"{source} ({line})"
    return f"{source}:{line}" if line else source


def _line_for(loc: tuple, lines: dict) -> Optional[int | str]:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _key_lines(node, prefix: tuple = ()) -> dict:
    """Map each key path of a composed YAML document to its 1-based line number."""
    out: dict = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = prefix + (str(k.value),)
            out[path] = k.start_mark.line + 1
            out.update(_key_lines(v, path))
    elif isinstance(node, yaml.SequenceNode):  # list entries by index: data.train[1].rows
        for i, v in enumerate(node.value):
            out[prefix + (i,)] = v.start_mark.line + 1
            out.update(_key_lines(v, prefix + (i,)))
    return out
