"""Inputs of `ftkit predict`: text lines (stdin or a file; pairs TAB-separated) or the rows of a table,
each numbered (1-based `line` or `row`) so that outputs can be pasted next to inputs."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, Optional

from ftkit.data import sources
from ftkit.errors import UserError

TABLES = {".csv", ".tsv", ".json", ".jsonl", ".parquet"}
CHUNK = 256


def lines(source: Optional[str], stdin, encoding: str = "utf-8") -> Iterator[str]:
    if source in (None, "-"):
        yield from (stdin if stdin is not None else sys.stdin)
        return
    sources.check_utf8(source, encoding)
    with open(source, encoding=encoding) as f:
        yield from f


def plain_inputs(lines: Iterable[str], pairs: bool, where: str) -> Iterator[tuple[dict, Optional[str], Optional[str]]]:
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not pairs:
            yield {"line": n}, line, None
            continue
        if not line.strip():
            yield {"line": n}, "", ""
            continue
        first, tab, second = line.partition("\t")
        if not tab:
            raise UserError(f"{where}:{n}: expected two texts separated by a TAB (this model classifies text pairs)")
        yield {"line": n}, first, second


def table_inputs(path: str, data, pairs: bool) -> Iterator[tuple[dict, Optional[str], Optional[str]]]:
    ds = sources.load_split(path, data, "FILE")
    sources.require_column(ds, data.text_column, "text column", path)
    if pairs:
        sources.require_column(ds, data.text_pair_column, "pair column", path)
    for n, row in enumerate(ds, 1):
        yield {"row": n}, row[data.text_column], row[data.text_pair_column] if pairs else None


def empty(text: Optional[str]) -> bool:
    return not isinstance(text, str) or not text.strip()
