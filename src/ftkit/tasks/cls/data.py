"""Labeled text for classification: (text, optional second text, label) rows from files or a hub dataset.

Real files are checked before anything trains on them, and every message names the file and
line (or hub row) it is about:
- the text / pair / label columns must exist (the message lists the columns that do);
- labels are strings or integers (a hub ClassLabel gives its names); a float column is refused
  unless every value is a whole number (0.0/1.0 as pandas writes integers), since fractional
  values mean regression scores, not classes; a missing label fails: guessing one would train on noise;
- empty or whitespace-only texts are SKIPPED and counted (logged with their first locations):
  they carry nothing to classify, real exports have a few (a 67k-row file should not fail on
  one blank review), and the count makes them visible. A file with no text at all fails.
Class names: the raw label value, or its `data.label_map` entry; their order (the class ids)
follows the raw values: integers numerically (so 0/1 stay ids 0/1), strings alphabetically.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ftkit.data import sources, tables
from ftkit.data.splits import held_out
from ftkit.engine.batches import eval_subset
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection

SHOWN = 3  # locations listed in a message


@dataclass
class Rows:
    """Usable rows of one split, aligned lists; `index` holds each row's position in the loaded dataset."""
    key: str
    texts: list[str]
    pairs: Optional[list[str]]
    labels: list[str]
    index: list[int]
    locate: Callable[[int], str]
    label_order: dict[str, tuple] = field(default_factory=dict)  # class name -> sort key of its raw value
    skipped: list[int] = field(default_factory=list)  # dataset rows skipped for an empty text

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, positions) -> "Rows":
        pos = [int(p) for p in positions]
        return Rows(self.key, [self.texts[p] for p in pos], None if self.pairs is None else [self.pairs[p] for p in pos],
                    [self.labels[p] for p in pos], [self.index[p] for p in pos], self.locate, self.label_order, [])

    def where(self, position: int) -> str:
        return self.locate(self.index[position])


class Locator:
    """Dataset row -> 'file:line' (or 'hub row N'); files are only scanned when a message needs a location."""

    def __init__(self, spec, data: DataSection, key: str):
        self.key, self.data = key, data
        self.spec = spec
        hub = sources.resolve_files(spec, key) is None
        # parts, not files: each entry's own format and column names, and its `rows` limit, decide what a row is
        self.parts = None if hub else sources.source_parts(spec, data, key)
        self._starts: dict[tuple, list] = {}

    def __call__(self, row: int) -> str:
        if self.parts is None:
            return f"{self.key} ({sources.describe(self.spec)}, hub) row {row}"
        left = row
        for part in self.parts:
            budget = part.rows
            for f in part.files:
                starts = self._record_starts(f, part)
                n = len(starts) if budget is None else min(len(starts), budget)
                if left < n:
                    return f"{f}:{starts[left]}" if starts[left] is not None else f"{f} row {left + 1}"
                left -= n
                if budget is not None:
                    budget -= n
        return f"{self.key} row {row}"

    def _record_starts(self, path: str, part: sources.Part) -> list:
        """The 1-based line where each record of `path` starts, counted as the loaders count records."""
        fmt, names = part.format, part.column_names
        cached = (path, fmt, tuple(names or ()), part.delimiter)
        if cached in self._starts:
            return self._starts[cached]
        starts: list = []
        if fmt in ("csv", "tsv"):
            starts = [line for line, _ in tables.records(path, fmt, part.delimiter,
                                                           sources.reading_encoding(self.data.encoding))]
            if (names is None or self.data.header == "true") and starts:
                starts = starts[1:]  # the header row
        elif fmt in ("text", "label_text") or (fmt == "json" and not _is_json_array(path)):  # one record per non-blank line
            with open(path, encoding=self.data.encoding) as f:
                starts = [i for i, line in enumerate(f, 1) if line.strip()]
        else:  # parquet, a JSON array: rows have no line of their own
            import pyarrow.parquet as pq

            n = pq.ParquetFile(path).metadata.num_rows if fmt == "parquet" else _json_rows(path)
            starts = [None] * n
        self._starts[cached] = starts
        return starts


def _is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    return head.startswith("[")


def _json_rows(path: str) -> int:
    import json

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return len(doc) if isinstance(doc, list) else len(next(iter(doc.values()), []))


def load_rows(spec, data: DataSection, key: str, split: str = "train", log=print) -> Rows:
    """Load a split and check its text / pair / label columns; skip (and count) rows with empty text."""
    ds = sources.load_split(spec, data, key, split=split, log=log)
    locate = Locator(spec, data, key)
    source = f"{key} ({sources.describe(spec)})"
    for col, what in ((data.text_column, "data.text_column"), (data.text_pair_column, "data.text_pair_column"),
                      (data.label_column, "data.label_column")):
        if col is not None:
            sources.require_column(ds, col, what, source)
    _no_header_as_data(ds, data, locate)
    texts = _text_values(ds, data.text_column, "data.text_column", source)
    pairs = _text_values(ds, data.text_pair_column, "data.text_pair_column", source) if data.text_pair_column else None
    names, order = _label_values(ds, data, locate, source)
    keep, skipped = [], []
    for i, t in enumerate(texts):
        empty = not t or not t.strip() or (pairs is not None and (not pairs[i] or not pairs[i].strip()))
        (skipped if empty else keep).append(i)
    if not keep:
        raise UserError(f"{source}: no row has text in column '{data.text_column}'"
                        f"{' and ' + repr(data.text_pair_column) if pairs is not None else ''} ({len(texts)} rows, all empty)")
    for i in keep:
        if names[i] is None:
            raise UserError(f"{locate(i)}: empty label in column '{data.label_column}'; every row needs its class "
                            f"(remove the row or fill in the label)")
    if skipped:
        shown = ", ".join(locate(i) for i in skipped[:SHOWN]) + (", ..." if len(skipped) > SHOWN else "")
        log(f"{key}: skipped {len(skipped):,} of {len(texts):,} rows with empty or whitespace-only text ({shown})")
    return Rows(key, [texts[i] for i in keep], None if pairs is None else [pairs[i] for i in keep],
                [names[i] for i in keep], keep, locate, order, skipped)


HEADER_WORDS = {"label", "labels", "class", "category", "target", "text", "sentence", "title"}


def _no_header_as_data(ds, data: DataSection, locate) -> None:
    """A file read without a header (data.column_names, header auto) whose first row names its columns would
    turn that header into an example, and its label column's name into a class: refuse, say how to choose."""
    if data.header != "auto" or not data.column_names or len(ds) == 0:
        return
    first = {c: str(ds[0].get(c, "")).strip().lower() for c in data.column_names}
    names = {c.lower() for c in data.column_names}
    if any(v == c.lower() for c, v in first.items()) or first.get(data.label_column, "") in names | HEADER_WORDS:
        raise UserError(f"{locate(0)}: the first row looks like a header ({', '.join(repr(v) for v in first.values())}), "
                        f"which data.column_names would read as data (its label as a class); set data.header: true to "
                        f"skip it, or data.header: false to keep it as a row")


def _text_values(ds, column: str, what: str, source: str) -> list[Optional[str]]:
    feature = ds.features[column]
    dtype = getattr(feature, "dtype", None)
    if dtype not in ("string", "large_string"):
        raise UserError(f"{source}: {what} '{column}' holds {dtype or type(feature).__name__} values; expected text "
                        f"(is it the right column? columns are: {', '.join(tables.visible(ds.column_names))})")
    return _column(ds, column)


def _column(ds, column: str) -> list:
    """A column as a Python list in one go (datasets' lazy Column costs ~10 us per indexed row)."""
    return ds.with_format("arrow")[column].to_pylist()


def _label_values(ds, data: DataSection, locate, source: str) -> tuple[list[Optional[str]], dict[str, tuple]]:
    """Class name per row (None: missing) and each name's sort key (the order of class ids)."""
    from datasets import ClassLabel, Value

    col = data.label_column
    feature, values = ds.features[col], _column(ds, col)
    renamed = {str(k): v for k, v in data.label_map.items()}
    raw: list = []
    if isinstance(feature, ClassLabel):  # hub datasets: ids with names; -1 marks an unlabeled row
        raw = [None if v is None or v < 0 else (0, v, feature.names[v]) for v in values]
    elif isinstance(feature, Value) and feature.dtype.startswith("float"):
        for i, v in enumerate(values):
            if v is not None and not math.isnan(v) and not float(v).is_integer():
                raise UserError(f"{locate(i)}: data.label_column '{col}' holds floats (e.g. {v!r}); expected class "
                                f"labels, strings or integers (cls classifies, it does not regress scores)")
        raw = [None if v is None or math.isnan(v) else (0, int(v), str(int(v))) for v in values]
    elif isinstance(feature, Value) and (feature.dtype.startswith(("int", "uint")) or feature.dtype == "bool"):
        raw = [None if v is None else (0, int(v), str(v)) for v in values]
    elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        raw = [None if v is None or not v.strip() else (1, v.strip(), v.strip()) for v in values]
    else:
        raise UserError(f"{source}: data.label_column '{col}' holds {feature} values; expected class labels "
                        f"(strings or integers)")
    if data.label_regex is not None:  # e.g. TREC's 'LOC:city' -> 'LOC'
        pattern = re.compile(data.label_regex)
        for i, r in enumerate(raw):
            if r is not None:
                m = pattern.search(str(r[2]))
                if m is None:
                    raise UserError(f"{locate(i)}: label {r[2]!r} does not match data.label_regex {data.label_regex!r}")
                new = m.group(1) if pattern.groups else m.group(0)
                raw[i] = (1, new, new)
    names: list[Optional[str]] = []
    order: dict[str, tuple] = {}
    for r in raw:
        if r is None:
            names.append(None)
            continue
        name = renamed.get(str(r[1]), r[2])
        names.append(name)
        order.setdefault(name, r[:2])
    return names, order


def train_and_validation(data: DataSection, seed: int, log=print) -> tuple[Rows, Optional[Rows]]:
    """(train, validation or None): data.validation, or a stratified, seeded data.validation_split of train."""
    if data.streaming:
        raise UserError("data.streaming: not supported for classification; the labeled data is read up front")
    train = load_rows(data.train, data, "data.train", log=log)
    if data.validation is not None:
        return _few(train, data, seed, log), load_rows(data.validation, data, "data.validation", split="validation", log=log)
    split = held_out(len(train), data, seed, labels=train.labels)  # stratified by class (data/splits.py)
    if split is None:
        return _few(train, data, seed, log), None
    return _few(train.subset(split[0]), data, seed, log), train.subset(split[1])


def _few(train: Rows, data: DataSection, seed: int, log) -> Rows:
    """data.train_examples: a seeded sample of the training rows, classes in proportion (after any validation split,
    so the validation rows are the same whatever the sample's size)."""
    if data.train_examples is None or data.train_examples >= len(train):
        return train
    pick = eval_subset(len(train), 1, data.train_examples, seed, train.labels)
    missing = sorted(set(train.labels) - {train.labels[int(i)] for i in pick})
    if missing:  # the model would be built without that class, or the validation data would name an unseen one
        raise UserError(f"data.train_examples: a sample of {data.train_examples} rows has no example of class "
                        f"{', '.join(repr(m) for m in missing[:3])} (rows are drawn in the classes' proportions); "
                        f"raise data.train_examples")
    log(f"data.train_examples: a seeded sample of {len(pick):,} of {len(train):,} training rows (classes in proportion)")
    return train.subset(pick)


def infer_labels(train: Rows) -> list[str]:
    """The class names of the training data, in class-id order."""
    names = sorted(set(train.labels), key=lambda n: train.label_order[n])
    if len(names) < 2:
        raise UserError(f"{train.key}: column holds a single label ({names[0]!r}); classification needs at least two classes")
    return names


def check_known(rows: Rows, known: list[str], against: str) -> None:
    """Fail when `rows` hold labels outside `known` (they could never be predicted, nor scored fairly)."""
    known_set = set(known)
    unseen: dict[str, int] = {}
    for i, name in enumerate(rows.labels):
        if name not in known_set:
            unseen.setdefault(name, i)
    if unseen:
        listed = ", ".join(f"{n!r} ({rows.where(i)})" for n, i in list(unseen.items())[:SHOWN])
        raise UserError(f"{rows.key}: {len(unseen)} label(s) that {against} never saw: {listed}; "
                        f"known labels: {', '.join(map(repr, known))} (data.label_map can rename labels)")


def encode(rows: Rows, tokenizer, max_length: int, label2id: dict[str, int], input_names: list[str]) -> list[dict]:
    """Tokenize (truncating at max_length, no padding: batches are padded to their own longest item)."""
    enc = tokenizer(rows.texts, rows.pairs, truncation=True, max_length=max_length,
                    return_token_type_ids="token_type_ids" in input_names, return_attention_mask=True)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc and k in input_names + ["input_ids"]]
    return [{**{k: enc[k][i] for k in keys}, "labels": label2id[name]} for i, name in enumerate(rows.labels)]


def length_stats(items: list[dict], max_length: int) -> str:
    lengths = np.array([len(it["input_ids"]) for it in items])
    capped = int((lengths >= max_length).sum())
    return (f"{lengths.mean():.1f} tokens on average, longest {lengths.max()}"
            + (f", {capped:,} cut at the cap of {max_length}" if capped else ""))


def describe_split(name: str, rows: Rows, items: list[dict], cap: int) -> str:
    """A log line: examples per class (the 8 largest), their lengths, empty rows skipped."""
    from collections import Counter

    counts = Counter(rows.labels)
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    return (f"{name}: {len(items):,} examples ({shown}{', ...' if len(counts) > 8 else ''}); "
            f"{length_stats(items, cap)}" + (f"; {len(rows.skipped):,} empty skipped" if rows.skipped else ""))
