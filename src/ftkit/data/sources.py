"""Turn `data.train` / `data.validation` into `datasets` objects, checking files first.

A spec is a file, a glob, a list of files, or a hub dataset id. Local paths are checked
before `datasets` sees them: a missing local path must be reported as missing, never
looked up on the hub (datasets would treat it as a hub id and fail much later).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional, Union

from ftkit.errors import UserError
from ftkit.paths import is_local
from ftkit.recipe.schema import DataSection

FORMATS = {".txt": "text", ".raw": "text", ".csv": "csv", ".tsv": "tsv", ".json": "json",
           ".jsonl": "json", ".parquet": "parquet"}
# Local loads must not ping the hub's download counter (see the stack notes).
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")


def resolve_files(spec: Union[str, list[str]], key: str) -> Optional[list[str]]:
    """Local files for a spec, or None when it names a hub dataset."""
    items = [spec] if isinstance(spec, str) else list(spec)
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
            raise UserError(f"{key}: file not found: {item}")
    return files


def file_format(files: list[str], data: DataSection, key: str) -> str:
    if data.format != "auto":
        return data.format
    kinds = {FORMATS.get(Path(f).suffix.lower(), "text") for f in files}
    if len(kinds) > 1:
        raise UserError(f"{key}: mixed file formats ({', '.join(sorted(kinds))}); set data.format or use one kind")
    return kinds.pop()


def check_utf8(path: str) -> None:
    """Fail with the file and line of the first byte that is not UTF-8."""
    with open(path, "rb") as f:
        raw = f.read()
    if b"\x00" in raw[:8192]:
        raise UserError(f"{path}: binary file (NUL bytes); expected UTF-8 text")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[e.start]:02x}); re-encode the file as UTF-8") from None


def load_split(spec, data: DataSection, key: str, streaming: bool = False, split: str = "train"):
    """Load one spec as a datasets Dataset (or IterableDataset when streaming)."""
    import datasets

    datasets.disable_progress_bars()
    files = resolve_files(spec, key)
    if files is None:
        return _load_hub(spec, data, key, streaming, split)
    fmt = file_format(files, data, key)
    for f in files:
        if os.path.getsize(f) == 0:
            raise UserError(f"{f}: empty file; expected {fmt} data")
        if fmt != "parquet":
            check_utf8(f)
    kwargs: dict = {}
    if fmt == "text":
        builder = "text"
        # keep line breaks: concatenated examples then reproduce the file exactly (clm packing)
        kwargs.update(sample_by=data.sample_by, keep_linebreaks=True)
    elif fmt in ("csv", "tsv"):
        builder = "csv"
        kwargs["sep"] = "\t" if fmt == "tsv" else ","
        kwargs["encoding"] = "utf-8-sig"  # tolerate a byte-order mark (MRPC has one)
        if fmt == "tsv":
            kwargs["quoting"] = 3  # csv.QUOTE_NONE: GLUE TSVs contain bare quotes
        if data.column_names:
            kwargs.update(column_names=data.column_names, header=None)
    else:
        builder = fmt
    try:
        ds = datasets.load_dataset(builder, data_files=files, split="train", streaming=streaming, **kwargs)
    except Exception as e:  # datasets wraps parser errors in several types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{key}: could not read {', '.join(files[:3])} as {fmt}: {msg}") from None
    return ds


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
        raise UserError(f"{source}: {key} '{column}' not found; columns are: {', '.join(names) or '(none)'}")


def train_and_validation(data: DataSection, seed: int, streaming: bool = False):
    """(train, validation or None) datasets as the recipe describes them."""
    train = load_split(data.train, data, "data.train", streaming=streaming)
    if data.validation is not None:
        return train, load_split(data.validation, data, "data.validation", split="validation")
    if data.validation_split <= 0:
        return train, None
    if streaming:
        raise UserError("data.validation_split cannot hold rows out of a stream; set data.validation")
    n_val = max(1, int(round(len(train) * data.validation_split)))
    if n_val >= len(train):
        raise UserError(f"data.validation_split={data.validation_split} leaves no training rows ({len(train)} rows)")
    if data.split_mode == "tail":
        cut = len(train) - n_val
        return train.select(range(cut)), train.select(range(cut, len(train)))
    parts = train.train_test_split(test_size=n_val, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def describe(spec) -> str:
    return spec if isinstance(spec, str) else ", ".join(spec)
