"""Question-answering examples from SQuAD JSON (`data` / `paragraphs` / `qas`), flattened jsonl / json / parquet rows
(`context`, `question`, `answers: {text, answer_start}`), or a hub dataset; checked as they are read.

Every answer must be a span of its context. An `answer_start` that does not slice the context to the answer
text (or none at all) is repaired to the text's first occurrence and counted (SQuAD's own dev answers were
recomputed that way); a text the context does not hold is an error naming the row. Without qa.version_2 every
question needs an answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.data.sources import json_lines, resolve_files
from ftkit.data.splits import held_out
from ftkit.engine.batches import eval_subset
from ftkit.errors import UserError
from ftkit.paths import is_local


@dataclass
class Example:
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, character start); empty: unanswerable (v2)
    where: str  # file and row, for messages


@dataclass
class Examples:
    items: list[Example] = field(default_factory=list)
    repaired: int = 0  # answer_start values moved to the answer text's first occurrence

    def __len__(self) -> int:
        return len(self.items)


def _answers(raw, loc: str, key: str) -> list[tuple[Optional[str], Optional[int]]]:
    """The answers of a row in either layout: {text: [...], answer_start: [...]} or [{text, answer_start}, ...]."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        texts = raw.get("text")
        if not isinstance(texts, list):
            raise UserError(f"{loc}: '{key}' has no list 'text' (expected {{text: [...], answer_start: [...]}})")
        starts = raw.get("answer_start") or [None] * len(texts)
        if len(starts) != len(texts):
            raise UserError(f"{loc}: '{key}' has {len(texts)} texts but {len(starts)} answer_start values")
        return list(zip(texts, starts))
    if isinstance(raw, list):
        out = []
        for a in raw:
            if not isinstance(a, dict) or "text" not in a:
                raise UserError(f"{loc}: an answer of '{key}' is not an object with a 'text' (got {str(a)[:60]})")
            out.append((a["text"], a.get("answer_start")))
        return out
    raise UserError(f"{loc}: '{key}' is {type(raw).__name__}; expected {{text: [...], answer_start: [...]}} or a list of {{text, answer_start}}")


def make_example(row: dict, loc: str, qa, number: int, out: Examples, impossible: bool = False) -> None:
    """Check one row and append it (columns named by the `qa:` section)."""
    for col in (qa.question_column, qa.context_column):
        if not isinstance(row.get(col), str):
            have = ", ".join(map(str, row))
            raise UserError(f"{loc}: no text field '{col}' (have: {have}); set qa.{'question' if col == qa.question_column else 'context'}_column")
    question, context = row[qa.question_column], row[qa.context_column]
    if not question.strip():
        raise UserError(f"{loc}: an empty question")
    answers = []
    for text, start in ([] if impossible else _answers(row.get(qa.answers_column), loc, qa.answers_column)):
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{loc}: an empty answer text; an unanswerable question has an empty answers list (qa.version_2)")
        if isinstance(start, int) and context[start:start + len(text)] == text:
            answers.append((text, start))
            continue
        found = context.find(text)
        if found < 0:
            raise UserError(f"{loc}: the answer {text[:60]!r} is not in its context (answers must be spans of the context)")
        out.repaired += start is not None
        answers.append((text, found))
    if not answers and not qa.version_2:
        raise UserError(f"{loc}: no answer; questions without an answer (SQuAD v2) need qa.version_2: true")
    qid = row.get(qa.id_column)
    out.items.append(Example(str(qid) if qid is not None else str(number), question, context, answers, loc))


def _squad_json(doc: dict, path: str, qa, out: Examples) -> None:
    """The official layout: {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers",
    "is_impossible"?}]}]}]}."""
    for a, article in enumerate(doc["data"]):
        for p, para in enumerate(article.get("paragraphs", [])):
            context = para.get("context")
            for q, item in enumerate(para.get("qas", [])):
                loc = f"{path} data[{a}].paragraphs[{p}].qas[{q}]"
                row = {qa.context_column: context, qa.question_column: item.get("question"),
                       qa.answers_column: item.get("answers") or [], qa.id_column: item.get("id")}
                make_example(row, loc, qa, len(out) + 1, out, impossible=bool(item.get("is_impossible")))


def _rows(path: str) -> list[dict]:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return json_lines(path)


def read_file(path: str, qa, out: Examples) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in (".json", ".jsonl", ".parquet"):
        raise UserError(f"{path}: question answering reads SQuAD JSON, .jsonl or .parquet files (not {suffix or 'no extension'})")
    if suffix == ".json":
        text = Path(path).read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None  # JSON lines under a .json name
        if isinstance(doc, dict) and "data" in doc:
            return _squad_json(doc, path, qa, out)
        if isinstance(doc, dict):
            raise UserError(f"{path}: a JSON object without 'data'; expected SQuAD's {{\"data\": [{{\"paragraphs\": ...}}]}} or one question per line")
        rows = doc if isinstance(doc, list) else _rows(path)
    else:
        rows = _rows(path)
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UserError(f"{path} row {n}: not a JSON object")
        make_example(row, f"{path}:{n}" if suffix == ".jsonl" else f"{path} row {n}", qa, len(out) + 1, out)


def _hub(name: str, data, qa, key: str, out: Examples) -> None:
    import datasets

    split = "train" if key == "data.train" else "validation"
    try:
        ds = datasets.load_dataset(name, data.hub_config, split=split)
    except Exception as e:  # offline, unknown id, ...: the hub raises many types
        raise UserError(f"{key}: could not load hub dataset '{name}': {str(e).splitlines()[0][:200]}") from None
    for n, row in enumerate(ds, 1):
        make_example(dict(row), f"hub:{name} row {n}", qa, len(out) + 1, out)


def load(spec, data, qa, key: str) -> Examples:
    """Every question of `spec` (a file, a glob, a list of files or a hub dataset id)."""
    out = Examples()
    files = resolve_files(spec, key)
    if files is None:
        if is_local(str(spec)):
            raise UserError(f"{key}: not found: {spec}")
        _hub(str(spec), data, qa, key, out)
    else:
        for entry in [spec] if isinstance(spec, str) else spec:
            start = len(out)
            for f in resolve_files([entry if isinstance(entry, str) else entry.path], key) or []:
                read_file(f, qa, out)
            rows = None if isinstance(entry, str) else entry.rows
            if rows is not None:
                del out.items[start + rows:]
    if not len(out):
        raise UserError(f"{key}: no questions in {spec}")
    return out


def train_and_validation(data, qa, seed: int) -> tuple[Examples, Optional[Examples]]:
    """Training and validation questions: data.validation, or data.validation_split of train (data/splits.py); then
    data.train_examples, a seeded sample of the training questions (learning curves; the validation set stays whole)."""
    train = load(data.train, data, qa, "data.train")
    if data.validation is not None:
        return sample(train, data.train_examples, seed), load(data.validation, data, qa, "data.validation")
    split = held_out(len(train), data, seed, unit="questions")
    if split is None:
        return sample(train, data.train_examples, seed), None
    pick = lambda idx: Examples([train.items[i] for i in idx], train.repaired)
    return sample(pick(split[0]), data.train_examples, seed), pick(split[1])


def sample(train: Examples, size: Optional[int], seed: int) -> Examples:
    """`size` of the questions, drawn with `seed` (kept in file order; the engine's seeded sample, as cls draws its
    data.train_examples), or all of them."""
    keep = eval_subset(len(train), 1, size, seed)
    return train if keep is None else Examples([train.items[int(i)] for i in keep], train.repaired)


def describe(name: str, ex: Examples) -> str:
    unanswerable = sum(not e.answers for e in ex.items)
    return (f"{name}: {len(ex):,} questions on {len({e.context for e in ex.items}):,} contexts"
            + (f", {unanswerable:,} without an answer" if unanswerable else "")
            + (f"; {ex.repaired:,} answer_start values did not slice the context to the answer text: moved to its "
               "first occurrence" if ex.repaired else ""))
