"""`ftkit predict` with a question-answering model (transformers 5 has no question-answering pipeline).

In: JSON lines {"question", "context"} (an "id" is echoed), from a file or stdin; or, with `--context FILE`,
one question per line (a file or stdin) about that one text. Out: one JSON line per question,
{"line", "answer", "score", "start", "end"}, where `start` / `end` are character offsets into the context and
`context[start:end] == answer`; score is the answer's share of the softmax over the question's n-best spans.
A SQuAD v2 model answers "" (with "no_answer": true) where the null score beats the best span by more than the
threshold: qa.null_threshold, else the one the run's final evaluation chose (metrics.json), else 0.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Iterator, Optional

from ftkit.data.inputs import lines as input_lines
from ftkit.errors import UserError
from ftkit.models.classifier import input_names, length_cap
from ftkit.tasks.qa.data import Example
from ftkit.tasks.qa.features import check_tokenizer, encode
from ftkit.tasks.qa.postprocess import answers
from ftkit.tasks.qa.section import QaSection
from ftkit.tasks.qa.task import QuestionAnswering

CHUNK = 64  # questions answered together (a stream on stdin gets answers as it goes)


def _threshold(req) -> float:
    qa = req.recipe.qa if req.recipe is not None else None
    if qa is not None and qa.null_threshold is not None:
        return qa.null_threshold
    try:
        final = json.loads((Path(req.path) / "metrics.json").read_text(encoding="utf-8")).get("final_metrics") or {}
    except (OSError, ValueError):
        final = {}
    return float(final.get("null_threshold", 0.0))


def _questions(lines: Iterator[str], where: str, context: Optional[str]) -> Iterator[tuple[int, dict]]:
    """(line number, {"question", "context", "id"?}) for each non-blank input line."""
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if context is not None:
            yield n, {"question": line, "context": context}
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise UserError(f"{where}:{n}: not a JSON object ({e.msg}); expected {{\"question\": ..., \"context\": ...}} "
                            "(or --context FILE with one question per line)") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}:{n}: not a JSON object; expected {{\"question\": ..., \"context\": ...}}")
        for key in ("question", "context"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UserError(f"{where}:{n}: no '{key}' text (expected {{\"question\": ..., \"context\": ...}})")
        yield n, row


def answer_chunk(model, tokenizer, qa, rows: list[tuple[int, dict]], batch_size: int, threshold: float,
                 where: str) -> list[dict]:
    import torch

    examples = [Example(str(row.get("id", n)), row["question"], row["context"], [], f"{where}:{n}") for n, row in rows]
    feats = encode(examples, tokenizer, length_cap(qa.max_length, model.config), qa.doc_stride, input_names(model, tokenizer))
    task = QuestionAnswering(tokenizer.pad_token_id or 0, qa)
    arrays: dict[str, list] = {}
    with torch.no_grad():
        for b in range(0, len(feats.items), batch_size):
            step = task.eval_step(model, task.eval_collate(feats.items[b:b + batch_size], None))
            for k, v in step.items():
                if getattr(v, "ndim", 0):  # per-feature arrays (the loss of the unlabelled features is not wanted)
                    arrays.setdefault(k, []).extend(list(v))
    found = answers(arrays, feats.example, feats.offsets, [e.context for e in examples], qa.n_best,
                    qa.max_answer_length, qa.version_2)
    out = []
    for i, (n, row) in enumerate(rows):
        a = found[i]
        result = {"line": n, **({"id": row["id"]} if "id" in row else {})}
        if qa.version_2 and a.null_gap > threshold:
            result.update(answer="", score=round(a.score, 6), start=None, end=None, no_answer=True)
        else:
            result.update(answer=a.text, score=round(a.score, 6), start=a.start, end=a.end)
        out.append(result)
    return out


def predict(req) -> Iterator[dict]:
    tokenizer = check_tokenizer(req.preprocessor, "--model")
    qa = req.recipe.qa if req.recipe is not None else QaSection()
    encoding = req.encoding or (req.recipe.data.encoding if req.recipe is not None else "utf-8")
    context = None
    if req.context is not None:
        if not Path(req.context).is_file():
            raise UserError(f"--context: not found: {req.context}")
        context = Path(req.context).read_text(encoding=encoding)
        if not context.strip():
            raise UserError(f"--context: {req.context} is empty")
    if req.source not in (None, "-") and not Path(req.source).is_file():
        raise UserError(f"FILE: not found: {req.source}")
    where = req.source if req.source not in (None, "-") else "stdin"
    model = req.model.eval()
    threshold = _threshold(req)
    questions = _questions(input_lines(req.source, req.stdin, encoding), where, context)
    while True:
        chunk = list(islice(questions, CHUNK))
        if not chunk:
            return
        yield from answer_chunk(model, tokenizer, qa, chunk, req.batch_size, threshold, where)
