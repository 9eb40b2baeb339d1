"""`ftkit predict`: run a saved model on new inputs; one JSON object (or output line) per input on stdout.

The model's task (from its config, through the registry) predicts: cls labels texts (tasks/cls/predict.py),
ner finds entities (tasks/ner/predict.py). Inputs are read and answered in chunks, so a stream on stdin
gets answers as it goes. An input the task cannot read (a broken image) comes as `Skipped` among the answers:
the others are still answered, and the run ends with `PartialFailure` (exit 3); when no input at all could be
read it ends as bad input (one line, exit 2).
"""

from __future__ import annotations

from typing import Iterator, Optional

from ftkit import registry
from ftkit.errors import PartialFailure, UserError
from ftkit.models import saved
from ftkit.tasks.spec import PredictRequest, Skipped
from ftkit.wording import with_article
from ftkit.workflows.evaluate import saved_recipe
from ftkit.workflows.resolve import family, task_of_saved


def run(model_dir: str, source=None, text_column: Optional[str] = None,
        pair_column: Optional[str] = None, column_names: Optional[list[str]] = None, batch_size: int = 32,
        all_scores: bool = False, stdin=None, fmt: str = "auto", encoding: Optional[str] = None,
        delimiter: Optional[str] = None, context: Optional[str] = None) -> Iterator:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = saved.check_dir(model_dir, "--model")
    task = task_of_saved(path)
    predict = family(task).predict if task is not None else None
    if predict is None:
        able = [t.name for t in registry.TASKS if family(t).predict is not None]
        raise UserError(f"--model: {model_dir} is not a model ftkit predicts with (its task: {task.name if task else 'unknown'}; "
                        f"predict works on {', '.join(able)} models); fine-tune one with `ftkit finetune`")
    if context is not None and task.name != "qa":
        raise UserError(f"--context: {model_dir} is {with_article(task.name)} model; --context is for question-answering models")
    model = saved.load_model(path, task)  # plain, PEFT adapter or int8
    sources = [source] if isinstance(source, str) else list(source or [])  # image models take several FILEs
    if len(sources) > 1 and not task.images:
        raise UserError(f"FILE: {len(sources)} files given; {with_article(task.name)} model reads one file (or stdin)")
    req = PredictRequest(model_dir, path, model, saved.load_preprocessor(path, task), saved_recipe(model_dir),
                         sources[0] if sources else None, stdin, batch_size, all_scores, fmt, encoding, text_column,
                         pair_column, column_names, sources, delimiter, context)
    yield from _count_skipped(predict(req))


def _count_skipped(results: Iterator) -> Iterator:
    """Pass answers and Skipped inputs on, in order; then fail if any input was skipped. Skipped inputs are held
    back until the first answer: when none could be read, the user gets one line (exit 2), not one per file."""
    held, answered, skipped = [], 0, 0
    for r in results:
        if isinstance(r, Skipped):
            skipped += 1
            if answered:
                yield r
            else:
                held.append(r)
            continue
        yield from held
        held = []
        answered += 1
        yield r
    if skipped and not answered:
        first = held[0]
        if skipped == 1:
            raise UserError(f"{first.input}: {first.why}")
        raise UserError(f"FILE: none of the {skipped:,} inputs could be read (first: {first.input}: {first.why})")
    if skipped:
        raise PartialFailure(f"{skipped:,} of {skipped + answered:,} inputs could not be read (the error lines above); "
                             f"the other {answered:,} were answered")
