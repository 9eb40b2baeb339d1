"""Turn `data.train` / `data.validation` into `datasets` objects, checking files first.

A spec is a file, a glob, a list of files, or a hub dataset id. Local paths are checked
before `datasets` sees them: a missing local path must be reported as missing, never
looked up on the hub (datasets would treat it as a hub id and fail much later).
List entries may also be `DataFile` mappings with their own format / text column / rows:
the files are then loaded part by part (one builder per format) and concatenated, so a
jsonl corpus and a TSV corpus can feed one run (e.g. IMDB reviews + SST-2 sentences), and
`rows` takes only the first N records of an entry (a balanced mix of sources).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ftkit.data import tables
from ftkit.data.splits import held_out
from ftkit.errors import UserError
from ftkit.paths import is_local, missing
from ftkit.recipe.schema import DataFile, DataSection

FORMATS = {".txt": "text", ".raw": "text", ".csv": "csv", ".tsv": "tsv", ".json": "json",
           ".jsonl": "json", ".parquet": "parquet"}
# Local loads must not ping the hub's download counter (see the stack notes).
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")


def _path(item: Union[str, DataFile]) -> str:
    return item if isinstance(item, str) else item.path


def resolve_files(spec: Union[str, list[Union[str, DataFile]]], key: str) -> Optional[list[str]]:
    """Local files for a spec, or None when it names a hub dataset."""
    items = [spec] if isinstance(spec, str) else [_path(i) for i in spec]
    if not items:
        raise UserError(f"{key}: empty list; expected a file, a glob, a list of files or a hub dataset id")
    files: list[str] = []
    for item in items:
        expanded = os.path.expanduser(item)
        if any(c in expanded for c in "*?["):
            matches = sorted(glob.glob(expanded, recursive=True))
            if not matches:
                raise UserError(f"{key}: no file matches '{item}'")
            files.extend(m for m in matches if os.path.isfile(m))
        elif os.path.isdir(expanded):
            inside = sorted(p for p in glob.glob(os.path.join(expanded, "**", "*"), recursive=True)
                            if os.path.isfile(p) and Path(p).suffix in FORMATS)
            if not inside:
                raise UserError(f"{key}: directory '{item}' holds no data files ({', '.join(FORMATS)})")
            files.extend(inside)
        elif os.path.isfile(expanded):
            files.append(expanded)
        elif isinstance(spec, str) and not is_local(item) and Path(item).suffix.lower() not in FORMATS:
            return None
        else:
            raise UserError(missing(item, key, "file"))
    return files


def is_utf8(encoding: str) -> bool:
    import codecs

    return codecs.lookup(encoding).name == "utf-8"


def reading_encoding(encoding: str) -> str:
    """How to open a file of data.encoding: UTF-8 as utf-8-sig, so a byte-order mark (MRPC has one) is not text."""
    return "utf-8-sig" if is_utf8(encoding) else encoding


def check_utf8(path: str, encoding: str = "utf-8") -> None:
    """Fail with the file and line of the first byte that is not valid in `encoding` (data.encoding); a .gz file is
    checked decompressed (seq2seq reads parallel text gzipped)."""
    import gzip

    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    if b"\x00" in raw[:8192] and not encoding.lower().startswith("utf-16"):
        raise UserError(f"{path}: binary file (NUL bytes); expected {encoding} text")
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        utf8 = is_utf8(encoding)
        hint = "set data.encoding (e.g. latin-1) or re-encode the file as UTF-8" if utf8 else f"the file is not {encoding}: check data.encoding"
        name = "UTF-8" if utf8 else encoding
        raise UserError(f"{path}:{line}: not valid {name} (byte 0x{raw[e.start]:02x}); {hint}") from None


def json_lines(path: str) -> list[dict]:
    """The records of a JSON-lines file, blank lines skipped; a line that is not JSON is an error naming path:line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise UserError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    return rows


def check_columns(path: str, fmt: str, names: list[str], encoding: str, delimiter: str) -> None:
    """csv/tsv with data.column_names: the first row must have as many fields as there are names."""
    fields = next(iter(tables.head(path, fmt, delimiter, reading_encoding(encoding), 1)), [])
    if len(fields) != len(names):
        raise UserError(f"{path}:1: {len(fields)} fields, but data.column_names has {len(names)} names "
                        f"({', '.join(names)}); expected one name per {fmt} column (data.format {fmt}, delimiter "
                        f"{tables.shown(delimiter)}: data.delimiter sets another)")


@dataclass
class Part:
    """Files loaded with one builder call: same format, text column, column names and delimiter."""
    files: list[str]
    format: str
    text_column: Optional[str] = None
    column_names: Optional[list[str]] = None
    rows: Optional[int] = None  # the entry's `rows`: only its first N records, across its files in order
    delimiter: Optional[str] = None  # csv / tsv: the one in force (given, sniffed or the format's own)
    sniffed: bool = False  # the delimiter was read off the files' header row (data/tables.py), not given


def source_parts(spec, data: DataSection, key: str) -> list[Part]:
    """A local spec as parts, in order: consecutive files that share format and settings form one part; an entry
    with `rows` is a part of its own (its limit counts its records only)."""
    items = [spec] if isinstance(spec, str) else list(spec)
    parts: list[Part] = []
    for i, item in enumerate(items):
        entry = item if isinstance(item, DataFile) else DataFile(path=item)
        names = entry.column_names if entry.column_names is not None else data.column_names
        given = entry.delimiter or data.delimiter
        mine: list[Part] = []
        for f in resolve_files([entry.path], key) or []:
            fmt = entry.format or (data.format if data.format != "auto" else FORMATS.get(Path(f).suffix.lower(), "text"))
            delimiter, sniffed = _delimiter(f, fmt, given, names, data)
            if mine and mine[-1].format == fmt and mine[-1].delimiter == delimiter:
                mine[-1].files.append(f)
            else:
                mine.append(Part([f], fmt, entry.text_column, names, entry.rows, delimiter, sniffed))
        if entry.rows is not None and len(mine) > 1:
            raise UserError(f"{key}[{i}]: rows {entry.rows} counts the records of one format, but '{entry.path}' holds "
                            f"{' and '.join(sorted({p.format for p in mine}))} files; give each format its own entry")
        last = parts[-1] if parts else None
        if mine and last and last.rows is None and entry.rows is None and _settings(last) == _settings(mine[0]):
            last.files.extend(mine.pop(0).files)
        parts.extend(mine)
    return parts


def _settings(part: Part) -> tuple:
    return part.format, part.text_column, part.column_names, part.delimiter


def _delimiter(path: str, fmt: str, given: Optional[str], names, data: DataSection) -> tuple[Optional[str], bool]:
    """(the delimiter a csv/tsv file is read with, whether it was sniffed); None for other formats."""
    if fmt in ("text", "label_text") and given is not None:
        raise UserError(f"{path}: read as {'plain text' if fmt == 'text' else fmt} (data.format {data.format}), so "
                        f"data.delimiter cannot apply; set data.format: csv (or name the file .csv)")
    if fmt not in ("csv", "tsv"):
        return None, False
    if given is not None:
        return given, False
    found = tables.sniff(path, reading_encoding(data.encoding), names) if fmt == "csv" else None
    return (found, True) if found else (tables.default(fmt), False)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)  # never stdout: `ftkit predict` writes its answers there


def load_split(spec, data: DataSection, key: str, streaming: bool = False, split: str = "train", log=_stderr):
    """Load one spec as a datasets Dataset (or IterableDataset when streaming)."""
    import datasets

    datasets.disable_progress_bars()
    files = resolve_files(spec, key)
    if files is None:
        return _load_hub(spec, data, key, streaming, split)
    loaded = []
    for part in source_parts(spec, data, key):
        if part.sniffed:
            log(f"{key}: {part.files[0]}{' (and more)' if len(part.files) > 1 else ''} read with the delimiter "
                f"{tables.shown(part.delimiter)}: its header row is one column with the comma (set data.delimiter to "
                f"choose)")
        ds = _load_part(part, data, key, streaming)
        if part.rows is not None:
            ds = ds.take(part.rows) if streaming else ds.select(range(min(part.rows, len(ds))))
        if streaming and ds.features is None:
            ds = ds._resolve_features()  # a stream knows its columns only once its first rows are read
        if part.text_column and part.text_column != data.text_column:
            require_column(ds, part.text_column, "text_column", f"{key} ({part.files[0]})")
            if data.text_column in (ds.column_names or []):
                ds = ds.remove_columns(data.text_column)
            ds = ds.rename_column(part.text_column, data.text_column)
        loaded.append(ds)
    return loaded[0] if len(loaded) == 1 else _concatenate(loaded, data, key)


def _concatenate(parts: list, data: DataSection, key: str):
    """One dataset from parts of different formats: keep the columns every part has, cast to the first part's
    types (csv gives large_string where json gives string); a column that will not cast is dropped."""
    import datasets

    first = parts[0]
    keep = [c for c in (first.column_names or []) if all(c in (p.column_names or []) for p in parts[1:])]
    if data.text_column not in keep:
        raise UserError(f"{key}: column '{data.text_column}' is not in every file; give the entries that name it "
                        f"differently a text_column, e.g. {{path: FILE, text_column: sentence}}")
    parts = [p.select_columns(keep) for p in parts]
    if first.features is not None:
        for i, p in enumerate(parts[1:], 1):
            for c in list(keep):
                if p.features is not None and p.features[c] != first.features[c]:
                    try:
                        parts[i] = parts[i].cast_column(c, first.features[c])
                    except (ValueError, TypeError):
                        if c == data.text_column:
                            raise UserError(f"{key}: column '{c}' holds {p.features[c]} in one file and "
                                            f"{first.features[c]} in another; expected text in both") from None
                        keep.remove(c)
        parts = [p.select_columns(keep) for p in parts]
    return datasets.concatenate_datasets(parts)


def _load_part(part: Part, data: DataSection, key: str, streaming: bool):
    import datasets

    files, fmt = part.files, part.format
    for f in files:
        if os.path.getsize(f) == 0:
            raise UserError(f"{f}: empty file; expected {fmt} data")
        if fmt != "parquet":
            check_utf8(f, data.encoding)
        if fmt == "text" and part.column_names:
            raise UserError(f"{f}: read as plain text (data.format {data.format}: '{Path(f).suffix or 'no extension'}' "
                            f"is not a table), so data.column_names cannot apply; set data.format: tsv or csv")
        if fmt in ("csv", "tsv") and part.column_names:
            check_columns(f, fmt, part.column_names, data.encoding, part.delimiter)
        if fmt in ("csv", "tsv"):
            tables.check_first_row(f, fmt, part.delimiter, reading_encoding(data.encoding), part.column_names,
                                   not part.column_names or data.header == "true")
    kwargs: dict = {"encoding": data.encoding} if fmt in ("text", "csv", "tsv", "json") else {}
    if fmt == "label_text":
        return _load_label_text(files, part.column_names or ["label", "text"], key, streaming, data.encoding)
    if fmt == "text":
        builder = "text"
        # keep line breaks: concatenated examples then reproduce the file exactly (clm packing)
        kwargs.update(sample_by=data.sample_by, keep_linebreaks=True)
    elif fmt in ("csv", "tsv"):
        builder = "csv"
        kwargs["sep"] = part.delimiter
        kwargs["encoding"] = reading_encoding(data.encoding)
        if fmt == "tsv":
            kwargs["quoting"] = 3  # csv.QUOTE_NONE: GLUE TSVs contain bare quotes
        if part.column_names:
            # header true: the file's own header row is skipped and its columns renamed
            kwargs.update(column_names=part.column_names, header=0 if data.header == "true" else None)
        elif data.header == "false":
            raise UserError(f"{files[0]}: data.header false needs data.column_names (the file has no header row to name its columns)")
    else:
        builder = fmt
    try:
        ds = datasets.load_dataset(builder, data_files=files, split="train", streaming=streaming, **kwargs)
    except Exception as e:  # datasets wraps parser errors in several types
        while e.__cause__ is not None or e.__context__ is not None:  # the parser's own words (line, fields) are innermost
            e = e.__cause__ or e.__context__
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{key}: could not read {', '.join(files[:3])} as {fmt} (data.format {data.format}): {msg}") from None
    return ds


def _load_label_text(files: list[str], names: list[str], key: str, streaming: bool, encoding: str = "utf-8"):
    """'LABEL text' lines (no loader in datasets for these): split at the first space; blank lines are no record."""
    import datasets

    if len(names) != 2:
        raise UserError(f"{key}: format label_text has two columns (label, text); column_names gives {len(names)}: {names}")
    label, text = names

    def split(batch):
        pairs = [line.strip().split(None, 1) for line in batch["text"]]
        return {label: [p[0] for p in pairs], text: [p[1] if len(p) > 1 else "" for p in pairs]}

    ds = datasets.load_dataset("text", data_files=files, split="train", streaming=streaming, encoding=encoding)
    ds = ds.filter(lambda b: [bool(line.strip()) for line in b["text"]], batched=True)
    return ds.map(split, batched=True, remove_columns=["text"] if text != "text" else None)


def _load_hub(spec: str, data: DataSection, key: str, streaming: bool, split: str):
    import datasets

    try:
        return datasets.load_dataset(spec, data.hub_config, split=split, streaming=streaming)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{key}: '{spec}' is not a local file and could not be loaded from the hub: {first}") from None


def require_column(ds, column: str, key: str, source: str) -> None:
    names = list(ds.column_names or [])
    if column not in names:
        raise UserError(f"{source}: {key} '{column}' not found; columns are: {', '.join(tables.visible(names)) or '(none)'}"
                        f"{tables.one_column_hint(names)}")


def train_and_validation(data: DataSection, seed: int, streaming: bool = False):
    """(train, validation or None) datasets as the recipe describes them."""
    train = load_split(data.train, data, "data.train", streaming=streaming)
    if data.validation is not None:
        return train, load_split(data.validation, data, "data.validation", split="validation")
    if data.validation_split <= 0:
        return train, None
    if streaming:
        raise UserError("data.validation_split cannot hold rows out of a stream; set data.validation")
    train_idx, val_idx = held_out(len(train), data, seed, drawn_order=True)  # rows shuffled before packing, as before
    return train.select(train_idx), train.select(val_idx)


def describe(spec) -> str:
    return spec if isinstance(spec, str) else ", ".join(_path(i) for i in spec)
