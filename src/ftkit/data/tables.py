"""Delimited text files (csv / tsv): the character between fields, and checks on what a reader made of the rows.

The delimiter is the entry's `delimiter`, else data.delimiter, else TAB for tsv and the comma for csv. One case is
sniffed, because it is unambiguous and common (spreadsheets in many locales export `;`): a csv file with no
delimiter set whose first row reads, with the comma, as ONE field holding exactly one of `;`, `|` or TAB, and whose
first two rows that character splits into the same number (2 or more) of fields. Nothing else is guessed.
Names starting with `__` (pandas' inferred index, `__index_level_0__`) are the reader's, never the file's: they
are left out of every "columns are" message, and a first row wider than the header (the cause) is refused.
"""

from __future__ import annotations

import csv
import itertools
from typing import Optional

from ftkit.errors import UserError

SNIFFED = (";", "|", "\t")
NAMES = {"\t": "TAB", ";": "';'", "|": "'|'", ",": "','"}


def default(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def shown(delimiter: str) -> str:
    return NAMES.get(delimiter, repr(delimiter))


def reader(f, fmt: str, delimiter: str):
    """A csv.reader that splits records as the loaders do (tsv: no quoting; GLUE TSVs contain bare quotes)."""
    return csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)


def records(path: str, fmt: str, delimiter: str, encoding: str):
    """Its non-blank records (pandas skips blank lines), each with the line it starts on, read as they are needed."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        r = reader(f, fmt, delimiter)
        last = 0
        for rec in r:
            first, last = last + 1, r.line_num
            if rec:
                yield first, rec


def head(path: str, fmt: str, delimiter: str, encoding: str, n: int = 2) -> list[list[str]]:
    """The first n non-blank records."""
    return [rec for _, rec in itertools.islice(records(path, fmt, delimiter, encoding), n)]


def sniff(path: str, encoding: str, names: Optional[list[str]]) -> Optional[str]:
    """The delimiter of a csv file whose first row is one field holding one of ';', '|', TAB (see the module doc),
    or None. `names`: data.column_names (the fields a row must split into)."""
    try:
        first = head(path, "csv", ",", encoding)
        if not first or len(first[0]) != 1:
            return None
        found = [c for c in SNIFFED if c in first[0][0]]
        if len(found) != 1:
            return None
        again = head(path, "csv", found[0], encoding)
    except (OSError, csv.Error, LookupError):
        return None  # the loader reports the file in its own words
    n = len(again[0])
    if n < 2 or (names and n != len(names)) or any(len(rec) != n for rec in again[1:]):
        return None
    return found[0]


def visible(columns) -> list[str]:
    """A dataset's columns as a user knows them: without the reader's own (`__index_level_0__`)."""
    return [c for c in columns or [] if not str(c).startswith("__")]


def one_column_hint(columns) -> str:
    """For a 'not found' message: a file read as one column named after its whole header used another delimiter."""
    names = visible(columns)
    if len(names) == 1:
        held = [c for c in SNIFFED if c in names[0]]
        if held:
            return (f" (the file was read as one column; its name holds {' and '.join(map(shown, held))}: set "
                    f"data.delimiter to the character between its fields)")
    return ""


def check_first_row(path: str, fmt: str, delimiter: str, encoding: str, names: Optional[list[str]],
                    header: bool) -> None:
    """pandas makes the leading fields an index (silently dropped, or `__index_level_0__`) when the first data row has
    more fields than the header (or data.column_names): every column would then hold its neighbour's values. Refuse
    at that row (a field holding the delimiter unquoted, or a delimiter ending each line). `header`: the file's first
    row is its header. Later rows are the parser's to check: it stops at a row of another width."""
    try:
        rows = list(itertools.islice(records(path, fmt, delimiter, encoding), 2 if header else 1))
    except (OSError, csv.Error, LookupError):
        return  # the loader reports the file in its own words
    if header and rows:
        expected, what = (len(names), "data.column_names has") if names else (len(rows[0][1]), "the header row has")
        rows = rows[1:]
    else:
        expected, what = len(names or ()), "data.column_names has"
    for line, rec in rows:
        if expected and len(rec) > expected:
            raise UserError(f"{path}:{line}: {len(rec)} fields, but {what} {expected} (delimiter {shown(delimiter)}): "
                            f"each column would take its neighbour's values; quote the fields that hold the delimiter, "
                            f"or set data.delimiter if the file uses another one")
