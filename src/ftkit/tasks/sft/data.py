"""Instruction data as conversations: rows of any table -> lists of {role, content} messages (data.format).

Layouts: messages (a column of message lists), prompt_completion (two columns, strings or message lists),
alpaca (instruction / input / output), template (sft.prompt_template / response_template over any
columns, so a labelled CSV or GSM8K becomes instruction data by recipe). Every message is checked here
(role, string content, an assistant turn present), with the file and row in the error.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Optional

from ftkit.data import sources, tables
from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection

ROLES = ("system", "user", "assistant")
ALPACA = ("instruction", "input", "output")


@dataclass
class Conversations:
    messages: list[list[dict]]
    where: list[str]  # "FILE row N" of each, for errors
    source: str

    def __len__(self) -> int:
        return len(self.messages)

    def subset(self, positions) -> "Conversations":
        return Conversations([self.messages[i] for i in positions], [self.where[i] for i in positions], self.source)


def _layout(data: DataSection, sft, columns: list[str], source: str) -> str:
    if data.format != "auto":
        return data.format
    if sft.prompt_template:
        return "template"
    if sft.messages_column in columns:
        return "messages"
    if sft.prompt_column in columns and sft.completion_column in columns:
        return "prompt_completion"
    if "instruction" in columns and "output" in columns:
        return "alpaca"
    raise UserError(f"{source}: cannot tell the layout of the examples from its columns ({', '.join(columns)}); set "
                    f"data.format: messages (column {sft.messages_column}), prompt_completion (columns {sft.prompt_column}, "
                    f"{sft.completion_column}), alpaca (instruction, input, output) or template (sft.prompt_template)")


def template_fields(template: str, key: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as e:
        raise UserError(f"{key}: {e} in '{template}' (a literal brace is written {{{{ or }}}})") from None


def _turns(value, role: str, where: str, key: str) -> list[dict]:
    """A prompt / completion cell: a string (one turn of `role`) or a list of messages."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list):
        return check_messages(value, where, key)
    raise UserError(f"{where}: {key} holds {type(value).__name__}; expected a string or a list of {{role, content}} messages")


def check_messages(messages, where: str, key: str = "messages") -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{where}: {key} is {'empty' if messages == [] else type(messages).__name__}; expected a list of "
                        f"{{role, content}} messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise UserError(f"{where}: {key}[{i}] is not a {{role, content}} message: {str(m)[:80]}")
        if m["role"] not in ROLES:
            raise UserError(f"{where}: {key}[{i}] has role '{m['role']}'; expected one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise UserError(f"{where}: {key}[{i}] ({m['role']}) has content of type {type(m['content']).__name__}; "
                            f"expected a string")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def to_messages(row: dict, layout: str, data: DataSection, sft, where: str, fields: tuple = ()) -> list[dict]:
    """One row as messages; `fields`: the columns the templates name (layout template), parsed once by the caller."""
    system = [{"role": "system", "content": sft.system_prompt}] if sft.system_prompt else []
    if layout == "messages":
        msgs = check_messages(row[sft.messages_column], where, sft.messages_column)
    elif layout == "prompt_completion":
        msgs = system + _turns(row[sft.prompt_column], "user", where, sft.prompt_column) + \
            _turns(row[sft.completion_column], "assistant", where, sft.completion_column)
    elif layout == "alpaca":
        instruction, extra, output = (row.get(k) for k in ALPACA)
        for k, v in (("instruction", instruction), ("output", output)):
            if not isinstance(v, str):
                raise UserError(f"{where}: alpaca column {k} holds {type(v).__name__}; expected text")
        user = instruction + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
        msgs = system + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    else:
        values = dict(row)
        if data.label_column in values and data.label_map:
            raw = values[data.label_column]
            keys = [raw, str(raw)] + ([int(raw)] if isinstance(raw, str) and raw.strip().lstrip("-").isdigit() else [])
            values[data.label_column] = next((data.label_map[k] for k in keys if k in data.label_map), raw)
        empty = [f for f in fields if values.get(f) is None]
        if empty:
            raise UserError(f"{where}: column {empty[0]} is empty; the templates need a value")
        msgs = system + [{"role": "user", "content": sft.prompt_template.format_map(values)},
                         {"role": "assistant", "content": sft.response_template.format_map(values)}]
    if not any(m["role"] == "assistant" for m in msgs):
        raise UserError(f"{where}: the conversation has no assistant turn; expected at least one reply to train on")
    return msgs


def load(spec, data: DataSection, sft, key: str, rows: Optional[int] = None) -> Conversations:
    """The conversations of a data spec (files by extension; data.format names the layout)."""
    ds = sources.load_split(spec, data.model_copy(update={"format": "auto"}), key)
    columns = list(ds.column_names)
    source = sources.describe(spec)
    layout = _layout(data, sft, columns, source)
    needed = {"messages": [sft.messages_column], "prompt_completion": [sft.prompt_column, sft.completion_column],
              "alpaca": ["instruction", "output"]}.get(layout)
    if layout == "template":
        needed = [*template_fields(sft.prompt_template, "sft.prompt_template"),
                  *template_fields(sft.response_template, "sft.response_template")]
    for c in dict.fromkeys(needed):
        if c not in columns:
            which = "sft.prompt_template / response_template name" if layout == "template" else f"format {layout} needs"
            raise UserError(f"{source}: {which} column '{c}', which it does not have; columns are: {', '.join(tables.visible(columns))}")
    if rows is not None:
        ds = ds.select(range(min(rows, len(ds))))
    out, where = [], []
    for i, row in enumerate(ds):
        w = f"{source} row {i + 1}"
        out.append(to_messages(row, layout, data, sft, w, tuple(needed) if layout == "template" else ()))
        where.append(w)
    if not out:
        raise UserError(f"{key}: {source} has no rows")
    return Conversations(out, where, source)


def train_and_validation(data: DataSection, sft, seed: int) -> tuple[Conversations, Optional[Conversations]]:
    """Training and validation conversations: data.validation, or data.validation_split of train (data/splits.py)."""
    train = load(data.train, data, sft, "data.train")
    if data.validation is not None:
        return train, load(data.validation, data, sft, "data.validation")
    split = held_out(len(train.messages), data, seed)
    if split is None:
        return train, None
    return train.subset(split[0]), train.subset(split[1])
