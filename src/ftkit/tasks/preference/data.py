"""Preference pairs: rows of jsonl (also gzipped) / json / parquet files -> (prompt messages, chosen, rejected) ->
token ids through the model's chat template.

Layouts, told apart per row: {prompt, chosen, rejected} (prompt a string or chat messages; each reply a string or
one assistant message), or whole dialogues {chosen, rejected} without a prompt: Anthropic HH strings
("\\n\\nHuman: ...\\n\\nAssistant: ...") or two message lists. A dialogue pair's prompt is the longest common prefix
of the two that ends with an assistant marker (HH: "\\n\\nAssistant:"; hh-rlhf has 5 rows where one reply itself
continues the dialogue, so cutting at each string's last marker would give two prompts); the replies are what follows.

Tokens: the prompt is the template with its generation prompt -- what inference sends -- and each reply is what the
template writes after it, through the end-of-turn token (so the model learns to stop), each tokenized on its own, as
TRL does: the prompt tokens of both replies are the same, and those of inference.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.data.sources import describe as describe_source
from ftkit.data.sources import json_lines, resolve_files
from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.tasks.sft.data import check_messages

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")


@dataclass
class Pair:
    prompt: list[dict]  # chat messages, the last one a user (or system) turn
    chosen: str
    rejected: str
    where: str


@dataclass
class Pairs:
    items: list[Pair] = field(default_factory=list)
    continued: int = 0  # dialogue pairs whose reply continues the dialogue (prompt = longest common prefix)
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, positions) -> "Pairs":
        return Pairs([self.items[int(i)] for i in positions], 0, self.source)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def hh_turns(text: str, where: str) -> list[dict]:
    """An HH prompt ("\\n\\nHuman: ... \\n\\nAssistant:") as chat messages (the empty last assistant turn dropped)."""
    if text.startswith(("Human:", "Assistant:")):
        text = "\n\n" + text
    parts = _TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise UserError(f"{where}: the dialogue does not start with '\\n\\nHuman:'; expected Anthropic HH text "
                        f"(\\n\\nHuman: ... \\n\\nAssistant: ...)")
    roles = {"Human": "user", "Assistant": "assistant"}
    msgs = [{"role": roles[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]
    if msgs[-1]["role"] != "assistant" or msgs[-1]["content"]:
        raise UserError(f"{where}: the prompt does not end with '\\n\\nAssistant:'")
    return msgs[:-1]


def split_hh(chosen: str, rejected: str, where: str) -> tuple[list[dict], str, str, bool]:
    """(prompt messages, chosen reply, rejected reply, the reply continues the dialogue) of an HH pair."""
    n = _common_prefix(chosen, rejected)
    cut = chosen.rfind(ASSISTANT, 0, n)  # a marker wholly inside the common prefix
    if cut < 0:
        raise UserError(f"{where}: chosen and rejected do not share a prompt (no common beginning that ends with "
                        f"'\\n\\nAssistant:'); expected two replies to one dialogue")
    end = cut + len(ASSISTANT)
    continued = chosen.rfind(ASSISTANT) != cut or rejected.rfind(ASSISTANT) != cut
    return hh_turns(chosen[:end], where), chosen[end:].strip(), rejected[end:].strip(), continued


def _reply(value, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        msgs = check_messages(value, where, key)
        if len(msgs) == 1 and msgs[0]["role"] == "assistant":
            return msgs[0]["content"]
        raise UserError(f"{where}: {key} holds {len(msgs)} messages; expected one assistant message (or a string)")
    raise UserError(f"{where}: {key} holds {type(value).__name__}; expected a string or an assistant message")


def _split_messages(chosen: list, rejected: list, where: str, cols) -> tuple[list[dict], str, str]:
    c, r = check_messages(chosen, where, cols.chosen_column), check_messages(rejected, where, cols.rejected_column)
    if len(c) < 2 or c[:-1] != r[:-1] or c[-1]["role"] != "assistant" or r[-1]["role"] != "assistant":
        raise UserError(f"{where}: {cols.chosen_column} and {cols.rejected_column} must be the same conversation up to a "
                        f"last assistant message each (the prompts differ)")
    return c[:-1], c[-1]["content"], r[-1]["content"]


def make_pair(row: dict, where: str, cols, out: Pairs) -> None:
    """Check one row and append it (columns named by the `dpo:` section)."""
    missing = [k for k in (cols.chosen_column, cols.rejected_column) if k not in row]
    if missing:
        raise UserError(f"{where}: no '{missing[0]}' field (have: {', '.join(map(str, row))}); a preference pair needs "
                        f"{cols.chosen_column} and {cols.rejected_column} (set dpo.{'chosen' if missing[0] == cols.chosen_column else 'rejected'}_column)")
    chosen, rejected = row[cols.chosen_column], row[cols.rejected_column]
    if cols.prompt_column in row:
        prompt = row[cols.prompt_column]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        else:
            prompt = check_messages(prompt, where, cols.prompt_column)
        chosen, rejected = _reply(chosen, where, cols.chosen_column), _reply(rejected, where, cols.rejected_column)
    elif isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected, continued = split_hh(chosen, rejected, where)
        out.continued += continued
    elif isinstance(chosen, list) and isinstance(rejected, list):
        prompt, chosen, rejected = _split_messages(chosen, rejected, where, cols)
    else:
        raise UserError(f"{where}: {cols.chosen_column} and {cols.rejected_column} must both be strings or both message "
                        f"lists (no '{cols.prompt_column}' field: whole dialogues)")
    if not prompt:
        raise UserError(f"{where}: an empty prompt")
    if chosen.strip() == rejected.strip():
        raise UserError(f"{where}: chosen and rejected are the same reply; a preference pair needs two different replies")
    out.items.append(Pair(prompt, chosen.strip(), rejected.strip(), where))


def _rows(path: str) -> list[dict]:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.endswith(".gz"):
        rows, n = [], 0
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for n, line in enumerate(f, 1):  # noqa: B007 (n: the line a JSON error names)
                    if line.strip():
                        rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not a JSON object ({e.msg})") from None
        except (OSError, EOFError, UnicodeDecodeError) as e:  # gzip.BadGzipFile is an OSError
            raise UserError(f"{path}: not a gzip file of UTF-8 JSON lines ({str(e).splitlines()[0][:120]})") from None
        return rows
    if path.endswith(".json"):
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError:
            return json_lines(path)
        if not isinstance(doc, list):
            raise UserError(f"{path}: expected a JSON list of pairs or one pair per line")
        return doc
    return json_lines(path)


def read_file(path: str, cols, out: Pairs) -> None:
    if not re.search(r"\.(jsonl|json|parquet|jsonl\.gz|json\.gz)$", path):
        raise UserError(f"{path}: preference pairs are read from .jsonl (or .jsonl.gz), .json or .parquet files")
    line = path.endswith(("jsonl", "jsonl.gz"))
    for n, row in enumerate(_rows(path), 1):
        where = f"{path}:{n}" if line else f"{path} row {n}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: not a JSON object")
        make_pair(row, where, cols, out)


def load(spec, cols, key: str) -> Pairs:
    """Every pair of `spec` (a file, a glob, a list of files; entries may take their first `rows`)."""
    out = Pairs(source=describe_source(spec))
    for entry in [spec] if isinstance(spec, str) else spec:
        start = len(out)
        files = resolve_files([entry if isinstance(entry, str) else entry.path], key)
        if files is None:
            raise UserError(f"{key}: {entry} is not a file; preference pairs are read from local files")
        for f in files:
            read_file(f, cols, out)
        rows = None if isinstance(entry, str) else entry.rows
        if rows is not None:
            del out.items[start + rows:]
    if not len(out):
        raise UserError(f"{key}: no preference pairs in {spec}")
    return out


def prompt_key(pair: Pair) -> str:
    return json.dumps(pair.prompt, ensure_ascii=False, sort_keys=True)


def train_and_validation(data, cols, seed: int) -> tuple[Pairs, Optional[Pairs]]:
    train = load(data.train, cols, "data.train")
    if data.validation is not None:
        return train, load(data.validation, cols, "data.validation")
    split = held_out(len(train), data, seed, unit="pairs", groups=[prompt_key(p) for p in train.items])  # data/splits.py
    if split is None:
        return train, None
    out = (Pairs([train.items[i] for i in split[0]], continued=train.continued, source=train.source),
           Pairs([train.items[i] for i in split[1]], continued=0, source=train.source))
    return out


@dataclass
class Encoded:
    items: list[dict]  # {"prompt", "chosen", "rejected"}: int32 token ids
    where: list[str]
    skipped: int  # longer than the block size
    longest: int


def _render(tokenizer, messages, generation_prompt: bool, where: str) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja2 raises TemplateError (or what the template's raise_exception says)
        raise UserError(f"{where}: the chat template refused this conversation: {str(e).splitlines()[0][:200]}") from None


def reply_text(tokenizer, prompt: list[dict], reply: str, before: str, where: str) -> str:
    """What the template writes after the generation prompt for this reply, through its end-of-turn token."""
    through = _render(tokenizer, [*prompt, {"role": "assistant", "content": reply}], False, where)
    if not through.startswith(before):
        raise UserError(f"{where}: the chat template does not render the prompt as the beginning of the conversation; "
                        f"the reply cannot be located")
    text = through[len(before):]
    eot = tokenizer.eos_token or ""
    cut = text.rfind(eot) if eot else -1
    return text if cut < 0 else text[:cut + len(eot)]


def encode(tokenizer, pairs: Pairs, block_size: int) -> Encoded:
    """Token ids of every pair; a pair whose prompt plus longer reply exceeds block_size is skipped and counted
    (cutting it would train on a reply whose question was cut away, or on half a reply)."""
    texts = []
    for p in pairs.items:
        before = _render(tokenizer, p.prompt, True, p.where)
        texts += [before, reply_text(tokenizer, p.prompt, p.chosen, before, p.where),
                  reply_text(tokenizer, p.prompt, p.rejected, before, p.where)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    items, where, skipped, longest = [], [], 0, 0
    for i, p in enumerate(pairs.items):
        prompt, chosen, rejected = ids[3 * i: 3 * i + 3]
        if not chosen or not rejected:
            raise UserError(f"{p.where}: a reply renders to no tokens through the chat template")
        if chosen == rejected:
            raise UserError(f"{p.where}: chosen and rejected are the same tokens; a preference pair needs two different replies")
        n = len(prompt) + max(len(chosen), len(rejected))
        longest = max(longest, n)
        if n > block_size:
            skipped += 1
            continue
        items.append({"prompt": np.asarray(prompt, dtype=np.int32), "chosen": np.asarray(chosen, dtype=np.int32),
                      "rejected": np.asarray(rejected, dtype=np.int32)})
        where.append(p.where)
    return Encoded(items, where, skipped, longest)


def length(item: dict) -> int:
    return len(item["prompt"]) + max(len(item["chosen"]), len(item["rejected"]))


def describe(name: str, pairs: Pairs, enc: Encoded, cap: int) -> str:
    prompts = len({prompt_key(p) for p in pairs.items})
    tokens = sum(len(i["prompt"]) + len(i["chosen"]) + len(i["rejected"]) for i in enc.items)
    skip = f" ({enc.skipped:,} longer than data.block_size {cap} skipped, longest {enc.longest:,})" if enc.skipped else ""
    cont = f"; {pairs.continued:,} whose reply continues the dialogue" if pairs.continued else ""
    return f"{name}: {len(pairs):,} pairs on {prompts:,} prompts; {len(enc.items):,} kept{skip}, {tokens:,} tokens{cont}"
