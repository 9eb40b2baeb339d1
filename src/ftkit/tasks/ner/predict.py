"""`ftkit predict` with a token classifier.

- Plain text (one input per line): entities as `pipeline("token-classification",
  aggregation_strategy="simple")` finds them — it is that pipeline — one JSON line per input:
  {"line": n, "entities": [{"text", "type", "start", "end", "score"}]}, offsets are character offsets
  into the input line and `text` is exactly `line[start:end]`.
- A CoNLL file (`--format conll`, or a .conll/.iob/.bio file): the same lines with a predicted-tag
  column appended (TAB-separated); blank lines and -DOCSTART- lines are kept as they are.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator, Optional

from ftkit.data.inputs import lines as input_lines
from ftkit.data.sources import check_utf8, reading_encoding
from ftkit.errors import UserError
from ftkit.models.classifier import checkpoint_labels, input_names, length_cap
from ftkit.models.strategy import is_peft
from ftkit.tasks.ner.data import Tagged
from ftkit.tasks.ner.entry import ENTRY
from ftkit.tasks.ner.items import WORDS_PER_SENTENCE, check_tokenizer, encode

CONLL_EXTS = {".conll", ".iob", ".bio", ".iob2", ".bioes"}


def is_conll(source: Optional[str], fmt: str) -> bool:
    return fmt == "conll" or (fmt == "auto" and source not in (None, "-") and Path(source).suffix.lower() in CONLL_EXTS)


def _merged(model):
    """The pipeline wants a plain transformers model: LoRA adapters are folded in (in memory only)."""
    return model.merge_and_unload() if is_peft(model) else model


def text_entities(model, tokenizer, lines: Iterator[str], batch_size: int, cap: int) -> Iterator[dict]:
    from transformers import pipeline

    pipe = pipeline("token-classification", model=_merged(model), tokenizer=tokenizer, aggregation_strategy="simple",
                    device="cpu", stride=max(1, cap // 4))
    numbered = ((n, line.rstrip("\r\n")) for n, line in enumerate(lines, 1))
    while True:
        chunk = list(islice(numbered, 256))
        if not chunk:
            return
        todo = [text for _, text in chunk if text.strip()]
        found = iter(pipe(todo, batch_size=batch_size) if todo else [])
        for n, text in chunk:
            ents = next(found) if text.strip() else []
            yield {"line": n, "entities": [{"text": text[e["start"]:e["end"]], "type": e["entity_group"],
                                            "start": int(e["start"]), "end": int(e["end"]),
                                            "score": round(float(e["score"]), 6)} for e in ents]}


def conll_lines(model, tokenizer, path: str, token_field: int, labels: list[str], cap: int,
                batch_size: int, encoding: str = "utf-8") -> Iterator[str]:
    """The file's lines, each token line with the predicted tag appended."""
    import torch

    from ftkit.tasks.ner.task import TokenClassification  # task.py imports this module

    check_utf8(path, encoding)
    lines = Path(path).read_text(encoding=reading_encoding(encoding)).splitlines()
    sents, where, current = Tagged(), [], []
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                sents.tokens.append([t for _, t in current]), sents.tags.append(["O"] * len(current))
                where.append([j for j, _ in current])
            current = []
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        try:
            current.append((i, cols[token_field].strip()))
        except IndexError:
            raise UserError(f"{path}:{i + 1}: no column {token_field} (ner.token_field)") from None
    if current:
        sents.tokens.append([t for _, t in current]), sents.tags.append(["O"] * len(current)), where.append([j for j, _ in current])
    items, _ = encode(sents, tokenizer, cap, {n: k for k, n in enumerate(labels)}, input_names(model, tokenizer))
    task = TokenClassification(tokenizer, labels)
    predicted: dict[int, str] = {}
    with torch.no_grad():
        for b in range(0, len(items), batch_size):
            step = task.eval_step(model, task.eval_collate(items[b:b + batch_size], None))  # word keys, first-piece argmax
            for k, p in zip(step["key"].tolist(), step["pred"].tolist()):
                s, w = divmod(k, WORDS_PER_SENTENCE)
                predicted[where[s][w]] = labels[p]
    line_of = {j for idx in where for j in idx}
    for i, line in enumerate(lines):
        yield f"{line}\t{predicted.get(i, 'O')}" if i in line_of else line


def predict(req):
    """Entities per text line (JSON objects), or a CoNLL file with a predicted column (strings); plain-text
    input is read lazily (only when the input is not CoNLL)."""

    model, source, fmt, batch_size, recipe = req.model, req.source, req.fmt, req.batch_size, req.recipe
    labels = checkpoint_labels(model.config, ENTRY)
    tokenizer = check_tokenizer(req.preprocessor, "--model")
    cap = length_cap(recipe.data.block_size if recipe is not None else 512, model.config)
    encoding = req.encoding or (recipe.data.encoding if recipe is not None else "utf-8")
    if source not in (None, "-") and not Path(source).is_file():
        raise UserError(f"FILE: not found: {source}")
    if is_conll(source, fmt):
        if source in (None, "-"):
            raise UserError("FILE: --format conll needs a file (stdin is read as plain text lines)")
        field = recipe.ner.token_field if recipe is not None else 0
        yield from conll_lines(model, tokenizer, source, field, labels, cap, batch_size, encoding)
        return
    yield from text_entities(model, tokenizer, input_lines(source, req.stdin, encoding), batch_size, cap)
