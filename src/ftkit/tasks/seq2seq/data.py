"""Source -> target pairs for task seq2seq, checked as they are read.

Three layouts:
- parallel text: data.train (or validation, or `ftkit eval --data A,B`) is the list [SOURCE_FILE, TARGET_FILE],
  one sentence per line, line-aligned (Multi30k's train.de.gz / train.en.gz); gzip is read directly;
- rows: jsonl / json / csv / tsv / parquet files (gzip too), the texts in seq2seq.source_column / target_column;
- a hub dataset id with those columns.
An empty source or target is an error naming the file and line (a model cannot learn to write nothing, and an
empty reference scores every output as wrong); so are parallel files of different line counts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.data.sources import resolve_files
from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.paths import is_local

TABLES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


@dataclass
class Pairs:
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    origin: str = ""  # what was read, for the log and messages

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, index) -> "Pairs":
        return Pairs([self.sources[i] for i in index], [self.targets[i] for i in index], self.origin)


def is_table(path: str) -> bool:
    name = path.lower()[:-3] if path.lower().endswith(".gz") else path.lower()
    return name.endswith(TABLES)


def _open(path: str, encoding: str):
    if path.endswith(".gz"):
        try:
            return io.TextIOWrapper(gzip.open(path), encoding=encoding, newline="")
        except OSError as e:
            raise UserError(f"{path}: cannot read it as gzip ({e})") from None
    return open(path, encoding=encoding, newline="")


def read_lines(path: str, encoding: str = "utf-8", rows: Optional[int] = None) -> list[str]:
    """The lines of a text file (gzip too), without their line ends; the first `rows` only when given."""
    out = []
    try:
        with _open(path, encoding) as f:
            for line in f:
                if rows is not None and len(out) >= rows:
                    break
                out.append(line.rstrip("\r\n"))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise UserError(f"{path}: not readable {encoding} text ({type(e).__name__}: {str(e)[:120]})") from None
    return out


def _rows(path: str, encoding: str, delimiter: Optional[str]) -> list[dict]:
    name = path.lower()[:-3] if path.lower().endswith(".gz") else path.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with _open(path, encoding) as f:
        if name.endswith((".csv", ".tsv")):
            return list(csv.DictReader(f, delimiter=delimiter or ("\t" if name.endswith(".tsv") else ",")))
        text = f.read()
    if name.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None  # JSON lines under a .json name
        if isinstance(doc, list):
            return doc
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise UserError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    return rows


def add_row(row, where: str, s2s, out: Pairs) -> None:
    if not isinstance(row, dict):
        raise UserError(f"{where}: not an object with '{s2s.source_column}' and '{s2s.target_column}' fields")
    for side, col in (("source", s2s.source_column), ("target", s2s.target_column)):
        if col not in row:
            raise UserError(f"{where}: no {side} field '{col}' (have: {', '.join(map(str, row))}); set seq2seq.{side}_column")
        if not isinstance(row[col], str):
            raise UserError(f"{where}: the {side} field '{col}' is {type(row[col]).__name__}; expected text")
    check_pair(row[s2s.source_column], row[s2s.target_column], where, out)


def check_pair(source: str, target: str, where: str, out: Pairs) -> None:
    if not source.strip():
        raise UserError(f"{where}: an empty source")
    if not target.strip():
        raise UserError(f"{where}: an empty target (every source needs its target text)")
    out.sources.append(source)
    out.targets.append(target)


def _entries(spec) -> list[tuple[str, Optional[int]]]:
    """(path, rows) of each entry of a data spec (a string, a list of strings or of {path, rows} entries)."""
    if isinstance(spec, str):
        return [(spec, None)]
    return [(e, None) if isinstance(e, str) else (e.path, e.rows) for e in spec]


def _parallel(entries, data, key: str, out: Pairs) -> None:
    if len(entries) != 2:
        raise UserError(f"{key}: {len(entries)} text file(s); parallel text is the list [SOURCE_FILE, TARGET_FILE] "
                        "(one sentence per line, line-aligned), or use jsonl/csv/parquet rows with "
                        "seq2seq.source_column / target_column")
    sides = []
    for (path, rows), side in zip(entries, ("source", "target")):
        files = resolve_files(path, key) or []
        if len(files) != 1:
            raise UserError(f"{key}: the {side} side '{path}' names {len(files)} files; expected one file per side")
        sides.append((files[0], read_lines(files[0], data.encoding, rows)))
    (src, s_lines), (tgt, t_lines) = sides
    if len(s_lines) != len(t_lines):
        raise UserError(f"{key}: {src} has {len(s_lines):,} lines but {tgt} has {len(t_lines):,}; "
                        "parallel files must be line-aligned (one sentence pair per line number)")
    for n, (s, t) in enumerate(zip(s_lines, t_lines), 1):
        if not t.strip():
            raise UserError(f"{tgt}:{n}: an empty target (the source on {src}:{n} needs its translation)")
        check_pair(s, t, f"{src}:{n}", out)
    out.origin = f"{src} -> {tgt}"


def _hub(name: str, data, s2s, key: str, out: Pairs) -> None:
    import datasets

    split = "train" if key == "data.train" else "validation"
    try:
        ds = datasets.load_dataset(name, data.hub_config, split=split)
    except Exception as e:  # offline, unknown id, ...: the hub raises many types
        raise UserError(f"{key}: could not load hub dataset '{name}': {str(e).splitlines()[0][:200]}") from None
    for n, row in enumerate(ds, 1):
        add_row(dict(row), f"hub:{name} row {n}", s2s, out)
    out.origin = f"hub:{name} ({split})"


def load(spec, data, s2s, key: str) -> Pairs:
    """Every pair of `spec`: parallel text files, rows files, or a hub dataset. `ftkit eval --data` gives parallel
    files as 'SOURCE,TARGET'."""
    if isinstance(spec, str) and "," in spec and not Path(spec).exists():
        spec = [p.strip() for p in spec.split(",")]
    out = Pairs()
    entries = _entries(spec)
    tables = [is_table(p) for p, _ in entries]
    if isinstance(spec, str) and resolve_files(spec, key) is None:
        if is_local(spec):
            raise UserError(f"{key}: not found: {spec}")
        _hub(spec, data, s2s, key, out)
    elif not any(tables):
        _parallel(entries, data, key, out)
    elif not all(tables):
        raise UserError(f"{key}: a mix of text files and row files ({', '.join(p for p, _ in entries)}); give either "
                        "[SOURCE_FILE, TARGET_FILE] or jsonl/csv/parquet files with source and target columns")
    else:
        for path, rows in entries:
            for f in resolve_files(path, key) or []:
                table = _rows(f, data.encoding, data.delimiter)
                suffix = ":" if f.lower().endswith((".jsonl", ".jsonl.gz")) else " row "
                for n, row in enumerate(table[:rows] if rows is not None else table, 1):
                    add_row(row, f"{f}{suffix}{n}", s2s, out)
        out.origin = ", ".join(p for p, _ in entries)
    if not len(out):
        raise UserError(f"{key}: no pairs in {spec}")
    return out


def train_and_validation(data, s2s, seed: int) -> tuple[Pairs, Optional[Pairs]]:
    """Training and validation pairs: data.validation, or data.validation_split of train (data/splits.py)."""
    train = load(data.train, data, s2s, "data.train")
    if data.validation is not None:
        return train, load(data.validation, data, s2s, "data.validation")
    split = held_out(len(train), data, seed, unit="pairs")
    if split is None:
        return train, None
    return train.subset(split[0]), train.subset(split[1])
