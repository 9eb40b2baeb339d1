"""The local paths a recipe reads (data files, a tokenizer or model to reuse): `ftkit recipes validate` checks
they exist. Outputs (output_dir, data.cache_dir, a tokenizer to train) and hub ids are not inputs here."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator, Union

from ftkit.paths import PACKAGE_SCHEME, is_gguf, is_local, resolve_package_path
from ftkit.recipe.fields import DataFile
from ftkit.recipe.schema import Recipe

# A name with one of these endings is a file even where it reads as a hub id (data/sources.py and
# tasks/vision/sources.py decide the same way); any other `name` / `owner/name` not on disk is a hub dataset.
DATA_SUFFIXES = (".txt", ".raw", ".text", ".csv", ".tsv", ".json", ".jsonl", ".parquet", ".gz",
                 ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _hub_dataset(path: str) -> bool:
    return not is_local(path) and Path(path).suffix.lower() not in DATA_SUFFIXES


def _data(key: tuple, spec: Union[str, list, None]) -> Iterator[tuple[tuple, str, str]]:
    if spec is None:
        return
    if isinstance(spec, str):
        if not _hub_dataset(spec):
            yield key, spec, "file"
        return
    for i, entry in enumerate(spec):
        path, where = (entry, key + (i,)) if not isinstance(entry, DataFile) else (entry.path, key + (i, "path"))
        if not _hub_dataset(path):
            yield where, path, "file"


def local_inputs(recipe: Recipe) -> Iterator[tuple[tuple, str, str]]:
    """(key path, the path as written, what it must be) for each local path the recipe reads."""
    yield from _data(("data", "train"), recipe.data.train)
    yield from _data(("data", "validation"), recipe.data.validation)
    yield from _data(("sft", "eval_data"), recipe.sft.eval_data)
    tok = recipe.tokenizer
    if tok is not None and tok.kind is None and is_local(tok.path):  # with a kind, the path is written, not read
        yield ("tokenizer", "path"), tok.path, "directory"
    model = recipe.model.from_pretrained
    if model is not None and is_local(model):
        yield ("model", "from_pretrained"), model, "GGUF file" if is_gguf(model) else "directory"


def missing_inputs(recipe: Recipe) -> Iterator[tuple[tuple, str, str]]:
    """(key path, path, what) of each input that is not there: a missing file or directory (a pkg:// path: inside
    its installed package), or a glob that matches nothing (what = "glob")."""
    for key, path, what in local_inputs(recipe):
        local = path
        if path.startswith(PACKAGE_SCHEME):  # (a package that is not installed: its own one-line error)
            local = resolve_package_path(path, ".".join(map(str, key)))
        local = os.path.expanduser(local)
        if any(c in local for c in "*?["):
            if not glob.glob(local, recursive=True):
                yield key, path, "glob"
        elif not (os.path.isdir(local) if what == "directory" else os.path.exists(local)):
            yield key, path, what
