"""Token-tagged sentences (NER): CoNLL-style files, JSON/JSONL/parquet list columns and hub datasets.

CoNLL files: one token per line, whitespace/TAB-separated columns (which hold the token and the tag:
ner.token_field / ner.tag_field), sentences separated by blank *or whitespace-only* lines
(WNUT-17's train file uses TAB-only separators for its first 2,395 sentences), `-DOCSTART-` lines
skipped. Tables: a column of token lists and one of tag lists (strings, or ints named by
ner.tag_names or the dataset's ClassLabel).

Tags are checked and normalised to one scheme the metrics read (see `normalise`): IOB2 stays IOB2
(an I- that begins an entity is repaired to B- and counted: conlleval and seqeval read it as a
beginning anyway), IOB1 is converted to IOB2, BIOES stays, BILOU becomes BIOES.
Every sentence remembers where it came from (`file:line`) for error messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.data.sources import check_utf8, json_lines, reading_encoding, resolve_files
from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.paths import is_local
from ftkit.tasks.ner.spans import entities

_TAG = re.compile(r"^(?:O|([BIESLU])-(.+))$")
_ALLOWED = {"iob2": "BI", "iob1": "BI", "bioes": "BIES", "bilou": "BILU"}


@dataclass
class Tagged:
    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # "file:line" of each sentence's first token
    repaired: int = 0                                 # IOB2: I- tags that began an entity, turned into B-

    def __len__(self) -> int:
        return len(self.tokens)


def file_format(path: str, data) -> str:
    if data.format not in ("auto", "conll"):
        return data.format
    ext = Path(path).suffix.lower()
    return {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(ext, "conll")


def read_conll(path: str, data, ner, out: Tagged) -> None:
    """Append the sentences of a CoNLL file to `out` (raw tags; `normalise` checks them)."""
    check_utf8(path, data.encoding)
    width, tokens, tags, start = None, [], [], 0
    with open(path, encoding=reading_encoding(data.encoding)) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                if tokens:
                    out.tokens.append(tokens), out.tags.append(tags), out.where.append(f"{path}:{start}")
                tokens, tags = [], []
                continue
            if line.startswith("-DOCSTART-"):
                continue
            cols = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            cols = [c.strip() for c in cols]
            if width is None:
                width = len(cols)
                for key, idx in (("ner.token_field", ner.token_field), ("ner.tag_field", ner.tag_field)):
                    if not -width <= idx < width:
                        raise UserError(f"{path}:{n}: {key} {idx} does not exist: lines have {width} columns")
            if len(cols) != width:
                raise UserError(f"{path}:{n}: {len(cols)} columns, but the file's lines have {width} "
                                f"(expected token and tag columns separated by TABs or spaces)")
            if not tokens:
                start = n
            tokens.append(cols[ner.token_field])
            tags.append(cols[ner.tag_field])
    if tokens:
        out.tokens.append(tokens), out.tags.append(tags), out.where.append(f"{path}:{start}")


def _rows(path: str, fmt: str) -> list[dict]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.endswith(".json"):
        text = Path(path).read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            return json.loads(text)
    return json_lines(path)


def read_table(rows: list[dict], where: str, ner, names: Optional[list[str]], out: Tagged) -> None:
    """Append rows with a token-list column and a tag-list column (strings, or ints named by `names`)."""
    for n, row in enumerate(rows, 1):
        loc = f"{where} row {n}"  # not `file:line`: a row holds many tokens (token_loc then names the token)
        for col in (ner.tokens_column, ner.tags_column):
            if col not in row:
                raise UserError(f"{loc}: no column '{col}' (have: {', '.join(map(str, row))}); "
                                f"set ner.tokens_column / ner.tags_column")
        tokens, tags = list(row[ner.tokens_column]), list(row[ner.tags_column])
        if not tokens:
            raise UserError(f"{loc}: an empty sentence (no tokens); drop the row")
        if len(tokens) != len(tags):
            raise UserError(f"{loc}: {len(tokens)} tokens but {len(tags)} tags")
        if tags and not isinstance(tags[0], str):
            if not names:
                raise UserError(f"{loc}: tags are numbers; name them with ner.tag_names (e.g. [O, B-PER, I-PER, ...])")
            try:
                tags = [names[int(t)] for t in tags]
            except IndexError:
                raise UserError(f"{loc}: tag id {max(map(int, tags))} has no name in ner.tag_names "
                                f"({len(names)} names)") from None
        out.tokens.append([str(t) for t in tokens]), out.tags.append([str(t) for t in tags]), out.where.append(loc)


def load(spec, data, ner, key: str) -> Tagged:
    """All sentences of `spec` (a file, glob, list, or hub id) as raw tokens and tags."""
    out = Tagged()
    files = resolve_files(spec, key)
    if files is None:  # a hub dataset id
        if is_local(str(spec)):
            raise UserError(f"{key}: not found: {spec}")
        _load_hub(str(spec), data, ner, key, out)
    else:
        for entry in [spec] if isinstance(spec, str) else spec:
            start = len(out)
            for f in resolve_files([entry if isinstance(entry, str) else entry.path], key) or []:
                _read_file(f, data, ner, out)
            rows = None if isinstance(entry, str) else entry.rows
            if rows is not None:  # the entry's first N sentences (data.train[i].rows)
                for column in (out.tokens, out.tags, out.where):
                    del column[start + rows:]
    if not len(out):
        raise UserError(f"{key}: no sentences in {spec} (expected one token per line with its tag, blank lines between sentences)")
    return out


def _read_file(f: str, data, ner, out: Tagged) -> None:
    fmt = file_format(f, data)
    if fmt == "conll":
        read_conll(f, data, ner, out)
    elif fmt in ("json", "parquet"):
        read_table(_rows(f, fmt), f, ner, ner.tag_names, out)
    else:
        raise UserError(f"{f}: data.format {fmt} cannot hold tagged tokens; expected conll, json (JSONL) or parquet")


def _load_hub(name: str, data, ner, key: str, out: Tagged) -> None:
    import datasets

    split = "train" if key == "data.train" else "validation"
    try:
        ds = datasets.load_dataset(name, data.hub_config, split=split)
    except Exception as e:  # offline, unknown id, ...: the hub raises many types
        raise UserError(f"{key}: could not load hub dataset '{name}': {str(e).splitlines()[0][:200]}") from None
    feat = ds.features.get(ner.tags_column)
    names = ner.tag_names or getattr(getattr(feat, "feature", None), "names", None)
    read_table(list(ds), f"hub:{name}", ner, names, out)


def token_loc(where: str, i: int) -> str:
    """Where token `i` of a sentence is: its file line (CoNLL: one token per line), or the row and token."""
    path, _, line = where.rpartition(":")
    return f"{path}:{int(line) + i}" if line.isdigit() else f"{where} token {i + 1}"


def normalise(t: Tagged, scheme: str) -> Tagged:
    """Check every tag and rewrite to IOB2 (iob2, iob1) or BIOES (bioes, bilou); errors name file:line."""
    allowed = _ALLOWED[scheme]
    for tags, where in zip(t.tags, t.where):
        prev_type, prev_prefix = None, "O"
        for i, tag in enumerate(tags):
            m = _TAG.match(tag)
            if not m or (m.group(1) and m.group(1) not in allowed):
                raise UserError(f"{token_loc(where, i)}: tag '{tag}' is not {scheme.upper()} (expected O or "
                                f"{'/'.join(allowed)}-TYPE, e.g. B-PER); set ner.tag_scheme if the file uses another")
            prefix, typ = (m.group(1), m.group(2)) if m.group(1) else ("O", None)
            if scheme == "bilou":
                prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
            elif prefix == "I" and (prev_type != typ or prev_prefix == "O"):
                # IOB1: I- starts an entity unless it continues one of its type; IOB2: the same, repaired and counted
                prefix = "B"
                t.repaired += scheme == "iob2"
            tags[i] = "O" if prefix == "O" else f"{prefix}-{typ}"
            prev_type, prev_prefix = typ, prefix
    for toks, where in zip(t.tokens, t.where):
        if any(not tok for tok in toks):
            raise UserError(f"{where}: an empty token")
    if scheme in ("bioes", "bilou"):
        _check_closed(t, scheme)
    return t


def _check_closed(t: Tagged, scheme: str) -> None:
    """BIOES / BILOU data closes every entity with E- (L-) or marks it S- (U-). Tags of IOB2 data are valid letters
    of both schemes, so IOB2 read as BIOES would train silently and score wrong spans: when not one entity of the
    data is closed, the data is IOB and the recipe's scheme is refused (naming the first entity left open)."""
    first_open = None
    for tags, where in zip(t.tags, t.where):  # already normalised: BILOU's L/U read as E/S
        for i, tag in enumerate(tags):
            if tag[:1] in ("E", "S"):
                return
            nxt = tags[i + 1] if i + 1 < len(tags) else "O"
            if first_open is None and tag[:1] in ("B", "I") and not (nxt[:1] in ("I", "E") and nxt[2:] == tag[2:]):
                first_open = (token_loc(where, i), tag)
    if first_open is not None:
        close, single = ("E", "S") if scheme == "bioes" else ("L", "U")
        raise UserError(f"{first_open[0]}: ner.tag_scheme is {scheme} but no entity in the data ends with {close}- or is "
                        f"a single {single}- ('{first_open[1]}' ends one here): the tags are IOB2; set ner.tag_scheme: iob2")


def label_list(tags: list[list[str]]) -> list[str]:
    """O first, then per entity type (sorted) its B/I/E/S tags, as the HF wnut_17 order."""
    seen = {tag for seq in tags for tag in seq}
    types = sorted({tag[2:] for tag in seen if tag != "O"})
    order = {"B": 0, "I": 1, "E": 2, "S": 3}
    out = ["O"] if "O" in seen else []
    for typ in types:
        out += sorted((tag for tag in seen if tag[2:] == typ and tag != "O"), key=lambda x: order[x[0]])
    return out


def check_known(t: Tagged, labels: list[str], against: str) -> None:
    known = set(labels)
    for tags, where in zip(t.tags, t.where):
        for i, tag in enumerate(tags):
            if tag not in known:
                raise UserError(f"{token_loc(where, i)}: tag '{tag}' never occurs in {against} (its tags: "
                                f"{', '.join(labels[:12])}{', ...' if len(labels) > 12 else ''})")


def subset(t: Tagged, index) -> Tagged:
    return Tagged([t.tokens[i] for i in index], [t.tags[i] for i in index], [t.where[i] for i in index], t.repaired)


def train_and_validation(data, ner, seed: int) -> tuple[Tagged, Optional[Tagged]]:
    """Normalised training and validation sentences: data.validation, or data.validation_split of train (data/splits.py)."""
    train = normalise(load(data.train, data, ner, "data.train"), ner.tag_scheme)
    if data.validation is not None:
        return train, normalise(load(data.validation, data, ner, "data.validation"), ner.tag_scheme)
    split = held_out(len(train), data, seed, unit="sentences")
    if split is None:
        return train, None
    return subset(train, split[0]), subset(train, split[1])


def describe(name: str, t: Tagged) -> str:
    from collections import Counter

    types = Counter(e[0] for tags in t.tags for e in entities(tags))
    shown = ", ".join(f"{k} {v:,}" for k, v in types.most_common(8))
    return (f"{name}: {len(t):,} sentences, {sum(map(len, t.tokens)):,} words, {sum(types.values()):,} entities"
            f" ({shown})" + (f"; {t.repaired:,} I- tags that began an entity read as B- (as conlleval does)" if t.repaired else ""))
