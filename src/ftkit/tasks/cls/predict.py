"""`ftkit predict` with a sequence classifier: one JSON object per input.

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

from itertools import islice
from pathlib import Path
from typing import Iterator

from ftkit.data.inputs import CHUNK, TABLES, empty, lines, plain_inputs, table_inputs
from ftkit.errors import UserError
from ftkit.models.classifier import checkpoint_labels, input_names, length_cap
from ftkit.recipe.schema import DataSection
from ftkit.tasks.cls.entry import ENTRY
from ftkit.tasks.spec import PredictRequest


def predict(req: PredictRequest) -> Iterator:
    """Yield one result per input: {"line" or "row": n, "label": name or None, "probability": p or None}."""
    import torch

    model, tokenizer, recipe, source, batch_size = req.model, req.preprocessor, req.recipe, req.source, req.batch_size
    labels = checkpoint_labels(model.config, ENTRY)
    if labels is None:
        raise UserError(f"--model: {req.model_dir} is not a sequence classifier; fine-tune one with `ftkit finetune --task cls`")
    data = recipe.data if recipe is not None else DataSection(train="-")
    changes = {k: v for k, v in (("text_column", req.text_column), ("text_pair_column", req.pair_column),
                                 ("column_names", req.column_names), ("delimiter", req.delimiter)) if v is not None}
    # the input file's own layout: its extension decides the format, a table's header names its columns (and a
    # csv file's header row its delimiter, when --delimiter does not)
    data = data.model_copy(update={"column_names": None, "header": "auto", "delimiter": None, **changes, "format": "auto",
                                   **({"encoding": req.encoding} if req.encoding else {})})
    pairs = data.text_pair_column is not None
    cap = length_cap(data.block_size, model.config)
    names = input_names(model, tokenizer)

    if source not in (None, "-") and not Path(source).is_file():
        raise UserError(f"FILE: not found: {source}")
    if source not in (None, "-") and Path(source).suffix.lower() in TABLES:
        inputs = table_inputs(source, data, pairs)
    elif req.delimiter is not None:
        raise UserError(f"--delimiter: applies to csv/tsv files; {source if source not in (None, '-') else 'stdin'} is "
                        f"read as text lines (pairs: TAB-separated)")
    else:
        inputs = plain_inputs(lines(source, req.stdin, data.encoding), pairs, source if source not in (None, "-") else "<stdin>")

    with torch.no_grad():
        while True:
            chunk = list(islice(inputs, CHUNK))
            if not chunk:
                return
            todo = [i for i, (_, t, p) in enumerate(chunk) if not empty(t) and (not pairs or not empty(p))]
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
                if req.all_scores:
                    out["scores"] = {labels[j]: round(v, 6) for j, v in enumerate(p)}
                yield out
