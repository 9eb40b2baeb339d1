"""`ftkit predict`: run a saved model on new inputs; one JSON object (or output line) per input on stdout.

The model's task (from its config, through the registry) predicts: cls labels texts (tasks/cls_predict.py),
ner finds entities (tasks/ner_predict.py). Inputs are read and answered in chunks, so a stream on stdin
gets answers as it goes.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ftkit import registry
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.tasks.spec import PredictRequest
from ftkit.wording import with_article


def run(model_dir: str, source=None, text_column: Optional[str] = None,
        pair_column: Optional[str] = None, column_names: Optional[list[str]] = None, batch_size: int = 32,
        all_scores: bool = False, stdin=None, fmt: str = "auto", encoding: Optional[str] = None,
        delimiter: Optional[str] = None, context: Optional[str] = None) -> Iterator:
    from transformers.utils import logging as hf_logging

    from ftkit.workflows.evaluate import saved_recipe

    hf_logging.disable_progress_bar()
    path = saved.check_dir(model_dir, "--model")
    task = registry.infer(saved.load_config(path).architectures)
    predict = registry.spec(task).predict if task is not None else None
    if predict is None:
        able = [t.name for t in registry.TASKS if registry.spec(t.name).predict is not None]
        raise UserError(f"--model: {model_dir} is not a model ftkit predicts with (its task: {task or 'unknown'}; "
                        f"predict works on {', '.join(able)} models); fine-tune one with `ftkit finetune`")
    if context is not None and task != "qa":
        raise UserError(f"--context: {model_dir} is {with_article(task)} model; --context is for question-answering models")
    model = saved.load_model(path, task)  # plain, PEFT adapter or int8
    sources = [source] if isinstance(source, str) else list(source or [])  # image models take several FILEs
    if len(sources) > 1 and not registry.entry(task).images:
        raise UserError(f"FILE: {len(sources)} files given; {with_article(task)} model reads one file (or stdin)")
    req = PredictRequest(model_dir, path, model, saved.load_preprocessor(path, task), saved_recipe(model_dir),
                         sources[0] if sources else None, stdin, batch_size, all_scores, fmt, encoding, text_column,
                         pair_column, column_names, sources, delimiter, context)
    yield from predict(req)
