"""`ftkit predict`: classify texts with a saved classifier; one JSON object per input on stdout.

Inputs:
- plain text (stdin, `-`, or a file whose extension is not a table format): one input per line;
  for a model trained on pairs, the two texts of a line are separated by a TAB. Output objects
  carry the 1-based `line`.
- a table (.csv .tsv .json .jsonl .parquet): read with the data settings of the model's recipe
  (text / pair columns, column names of headerless files), overridable with options. Output
  objects carry the 1-based data `row`.
Every input gets exactly one output line, in input order, so outputs can be pasted next to inputs;
an empty or whitespace-only input gets `"label": null` (there is nothing to classify).
Inputs are read and classified in chunks, so a stream on stdin gets answers as it goes.
"""

from __future__ import annotations

import sys
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ftkit.data import sources
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.classifier import checkpoint_labels, input_names, max_positions

TABLES = {".csv", ".tsv", ".json", ".jsonl", ".parquet"}
CHUNK = 256


def _lines(source: Optional[str], stdin, encoding: str = "utf-8") -> Iterator[str]:
    if source in (None, "-"):
        yield from (stdin if stdin is not None else sys.stdin)
        return
    sources.check_utf8(source, encoding)
    with open(source, encoding=encoding) as f:
        yield from f


def _plain_inputs(lines: Iterable[str], pairs: bool, where: str) -> Iterator[tuple[dict, Optional[str], Optional[str]]]:
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


def _table_inputs(path: str, data, pairs: bool) -> Iterator[tuple[dict, Optional[str], Optional[str]]]:
    ds = sources.load_split(path, data, "FILE")
    sources.require_column(ds, data.text_column, "text column", path)
    if pairs:
        sources.require_column(ds, data.text_pair_column, "pair column", path)
    for n, row in enumerate(ds, 1):
        yield {"row": n}, row[data.text_column], row[data.text_pair_column] if pairs else None


def _empty(text: Optional[str]) -> bool:
    return not isinstance(text, str) or not text.strip()


def run(model_dir: str, source: Optional[str] = None, text_column: Optional[str] = None,
        pair_column: Optional[str] = None, column_names: Optional[list[str]] = None, batch_size: int = 32,
        all_scores: bool = False, stdin=None, fmt: str = "auto", encoding: Optional[str] = None) -> Iterator:
    """Yield one result per input: {"line" or "row": n, "label": name or None, "probability": p or None}."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ftkit.recipe.schema import DataSection
    from ftkit.workflows.evaluate import saved_recipe

    hf_logging.disable_progress_bar()
    path = saved.check_dir(model_dir, "--model")
    if checkpoint_labels(saved.load_config(path), "ner") is not None:
        from ftkit.workflows.predict_ner import run as run_ner

        yield from run_ner(model_dir, path, saved.load_model(path, "ner"), source, fmt, batch_size, _lines(source, stdin))
        return
    model = saved.load_model(path, "cls")  # plain, PEFT adapter or int8
    labels = checkpoint_labels(model.config)
    if labels is None:
        raise UserError(f"--model: {model_dir} is not a sequence classifier; fine-tune one with `ftkit finetune --task cls`")
    tokenizer = AutoTokenizer.from_pretrained(path)
    recipe = saved_recipe(model_dir)
    data = recipe.data if recipe is not None else DataSection(train="-")
    changes = {k: v for k, v in (("text_column", text_column), ("text_pair_column", pair_column),
                                 ("column_names", column_names)) if v is not None}
    # the input file's own layout: its extension decides the format, a table's header names its columns
    data = data.model_copy(update={"column_names": None, "header": "auto", **changes, "format": "auto",
                                   **({"encoding": encoding} if encoding else {})})
    pairs = data.text_pair_column is not None
    cap = min(data.block_size, max_positions(model.config) or data.block_size)
    names = input_names(model, tokenizer)

    if source not in (None, "-") and not Path(source).is_file():
        raise UserError(f"FILE: not found: {source}")
    if source not in (None, "-") and Path(source).suffix.lower() in TABLES:
        inputs = _table_inputs(source, data, pairs)
    else:
        inputs = _plain_inputs(_lines(source, stdin, data.encoding), pairs, source if source not in (None, "-") else "<stdin>")

    with torch.no_grad():
        while True:
            chunk = list(islice(inputs, CHUNK))
            if not chunk:
                return
            todo = [i for i, (_, t, p) in enumerate(chunk) if not _empty(t) and (not pairs or not _empty(p))]
            probs: dict[int, list[float]] = {}
            order = sorted(todo, key=lambda i: len(chunk[i][1]) + len(chunk[i][2] or ""))  # similar lengths together
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                enc = tokenizer([chunk[i][1] for i in idx], [chunk[i][2] for i in idx] if pairs else None,
                                truncation=True, max_length=cap, padding=True, return_tensors="pt",
                                return_token_type_ids="token_type_ids" in names)
                logits = model(**{k: v for k, v in enc.items() if k in names or k == "input_ids"}).logits.float()
                for i, p in zip(idx, torch.softmax(logits, -1).tolist()):
                    probs[i] = p
            for i, (where, _, _) in enumerate(chunk):
                p = probs.get(i)
                if p is None:
                    yield {**where, "label": None, "probability": None}
                    continue
                best = max(range(len(p)), key=p.__getitem__)
                out = {**where, "label": labels[best], "probability": round(p[best], 6)}
                if all_scores:
                    out["scores"] = {labels[j]: round(v, 6) for j, v in enumerate(p)}
                yield out
