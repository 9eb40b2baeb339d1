"""What passes between the workflows and a task family (tasks/family.Family, a task module's `SPEC`).

The registry (ftkit/registry.py) names the module; the one train workflow calls `SPEC.prepare` and gets a
`Prepared`, the one evaluate workflow (and compress) hands `SPEC.evaluation` an `EvalRequest` and gets an
`EvalSetup`, `ftkit predict` hands `SPEC.predict` a `PredictRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

Log = Callable[[str], None]


@dataclass
class Prepared:
    """A task's training set-up, handed to the train workflow: everything it needs and nothing task-specific."""
    model: Any
    task: Any  # engine.task_api.Task
    train_items: Any  # a sequence of items, or a stream (data.streaming)
    val_items: Optional[Any]
    preprocessor: Any = None  # saved with the model (tokenizer / image processor); None: nothing
    # epoch order from (rng, global batch size) (default: shuffled)
    order: Optional[Callable[[np.random.Generator, int], np.ndarray]] = None
    block_tokens: Optional[int] = None  # tokens per item when fixed (packed LM blocks): train.max_tokens budgets, FLOPs
    seq_len: Optional[int] = None  # positions the model sees per item, for the memory estimate (default data.block_size)
    eval_seed: int = 0  # the collate seed of validation batches (masked LMs: masking.eval_seed, as `ftkit eval`)
    stream: bool = False
    unit: str = "examples"  # what an item is, for the log ("blocks of 256 tokens", ...)
    summary: dict = field(default_factory=dict)  # extra keys of metrics.json (labels, skipped rows, ...)
    # after training, on the main process: (final model, run dir) -> more keys of metrics.json (mim: its pictures)
    report: Optional[Callable[[Any, Path], dict]] = None
    # models the task reads and never trains (a DPO reference, a distillation teacher): the workflow moves each to the
    # training device and keeps it in eval mode without gradients; the task holds them (nn.Module.to is in place), they
    # are neither wrapped for DDP nor given to the optimizer, nor saved
    frozen: tuple = ()


@dataclass
class EvalRequest:
    """What `ftkit eval` (and compress) asks a task to evaluate: a loaded model on some data."""
    model_dir: str
    path: str  # local path of model_dir
    recipe: Any  # the model's recipe with the data settings of the evaluation data
    data: Optional[str]  # a file (`--data`), or None: the recipe's validation data
    model: Any
    preprocessor: Any  # the model's tokenizer, or image processor for image tasks (registry: preprocessor)
    log: Log = print
    split: str = "validation"  # with data None: "validation" or "train" (compress' importance batches)
    plot: Optional[str] = None  # where a report image goes (cls: confusion matrix)
    sample: Optional[int] = None  # keep a seeded sample of this many examples, drawn before encoding (compress)
    generate: bool = False  # sft: evaluate generated replies (exact match) instead of the loss
    generations: Optional[str] = None  # sft --generate: where the replies are written (JSONL)


def sample_positions(n: int, size: Optional[int]) -> Optional[np.ndarray]:
    """EvalRequest.sample: which of `n` examples to keep (sorted; seed 0), None for all."""
    if size is None or size >= n:
        return None
    return np.sort(np.random.default_rng(0).choice(n, size=size, replace=False))


@dataclass
class EvalSetup:
    task: Any
    items: Any
    seed: int = 0  # collate seed of the evaluation batches
    extras: dict = field(default_factory=dict)  # added to the result before the metrics
    finish: Optional[Callable[[dict], None]] = None  # after the metrics (cls: draws the confusion matrix)


@dataclass
class PredictRequest:
    """`ftkit predict`: a loaded model and where its inputs come from."""
    model_dir: str
    path: str
    model: Any
    preprocessor: Any  # tokenizer or image processor
    recipe: Any  # the model's recipe, or None
    source: Optional[str]  # a file, "-" or None (stdin)
    stdin: Any = None
    batch_size: int = 32
    all_scores: bool = False
    fmt: str = "auto"
    encoding: Optional[str] = None
    text_column: Optional[str] = None
    pair_column: Optional[str] = None
    column_names: Optional[list] = None
    sources: list = field(default_factory=list)  # every FILE argument (image models take several files and folders)
    delimiter: Optional[str] = None  # --delimiter: of a csv/tsv FILE (default: TAB for tsv; csv: comma, or sniffed)
    context: Optional[str] = None  # qa --context: a file holding the one context the questions ask about


@dataclass(frozen=True)
class Skipped:
    """What a task's predict yields for an input it cannot read (image models: a broken or missing file): the
    other inputs are still answered; `ftkit predict` prints "error: INPUT: WHY" on stderr and fails at the end."""
    input: str
    why: str


def quiet(*_a, **_k) -> None:
    pass


def fresh_file(folder, stem: str, suffix: str) -> Path:
    """folder/STEM.SUFFIX, or STEM-2, STEM-3, ...: an evaluation never writes over an earlier evaluation's file."""
    path, n = Path(folder) / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = Path(folder) / f"{stem}-{n}{suffix}"
    return path


def write_outputs(req: "EvalRequest", result: dict, path: Path, text: str, what: str) -> None:
    """Write an evaluation's outputs (predictions) to `path` and name them in `result`; a failure to write is one log
    line, not an error (the metrics are already computed and printed)."""
    import os

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        req.log(f"predictions: not written ({e.strerror}: {path})")
        return
    result["predictions"] = os.path.normpath(str(path))
    req.log(f"predictions: {path} ({what})")
