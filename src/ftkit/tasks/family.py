"""The typed family base: the sequence every supervised family's `prepare` and `evaluation` share, written once.

    prepare     tokenizer fitted -> training / validation examples read and split (before the model loads, so bad
                data fails fast) -> the model -> the Task, checked against train.metric_for_best before anything is
                encoded -> training items -> validation items, shortest first -> what the family adds -> Prepared
    evaluation  the model recognised -> the examples: --data, the training file (compress) or the recipe's
                validation split -> a seeded sample (drawn before encoding) -> the Task -> items (shortest first
                unless sampled) -> what the family adds -> EvalSetup

A family (`tasks/<family>/task.py`) subclasses `Family[Rows]`, where Rows is its examples as read (labelled rows,
tagged sentences, question / context examples, sentence pairs, ...), and writes the steps that differ: `read`,
`split`, `subset`, `build`, `make_task`, `encode`, and `recognise` for evaluation; the other steps have defaults.
Per-run state lives in a `Run` handed from step to step, never on the family (one instance serves every run).
Families whose whole sequence is another one (LM blocks, masked encoders, images) are written as two functions
(`TaskSpec`): the same type to the workflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Optional, Sequence, TypeVar

import numpy as np

from ftkit.engine.batches import by_length, length_grouped
from ftkit.engine.loop import check_metric
from ftkit.engine.task_api import Task
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry
from ftkit.tasks.spec import EvalRequest, EvalSetup, Log, PredictRequest, Prepared, sample_positions

Rows = TypeVar("Rows")


@dataclass
class Encoded:
    """A family's items for the engine, with the log line that describes them and the keys they add to the run's
    summary (prepare: metrics.json; evaluation: the result)."""
    items: list
    note: str = ""
    summary: dict = field(default_factory=dict)
    raw: Any = None  # the family's own record of the encoding, for its later steps (qa: the windows' offsets)


@dataclass
class Run(Generic[Rows]):
    """One prepare or evaluation in progress: what the steps so far produced."""
    recipe: Recipe
    tokenizer: Any  # the family's preprocessor (a transformers tokenizer), after fit_tokenizer
    log: Log
    accelerator: Any = None  # training only (accelerate.Accelerator)
    model: Any = None  # transformers PreTrainedModel (or its peft wrapper at evaluation)
    head: Any = None  # what build / recognise found that later steps need: labels, a decoder start id, settings
    train: Optional[Rows] = None
    val: Optional[Rows] = None  # training: the validation rows; evaluation: the rows evaluated
    task: Optional[Task] = None
    train_enc: Optional[Encoded] = None
    val_enc: Optional[Encoded] = None
    request: Optional[EvalRequest] = None  # evaluation only
    frozen: tuple = ()  # models the task reads and never trains (Prepared.frozen)
    kept: dict = field(default_factory=dict)  # what a family's step keeps for its later steps (cls: vocabulary coverage)

    @property
    def training(self) -> bool:
        return self.request is None


class Family(Generic[Rows]):
    """What the workflows know of a task: prepare (training), evaluation, and optionally render / predict / corpus."""

    entry: TaskEntry  # the task it is (its package's entry.py): what models/ and data/ are told, never a name
    unit: str = "examples, length-grouped"  # what a training item is, for the log
    eval_seed_from_recipe: bool = False  # evaluation batches collated with train.seed (default 0)

    # ---- the templates ---------------------------------------------------------------------------------------
    def prepare(self, recipe: Recipe, tokenizer, accelerator, log: Log) -> Prepared:
        run: Run[Rows] = Run(recipe, self.fit_tokenizer(recipe, tokenizer, training=True), log, accelerator)
        run.train, run.val = self.split(run)
        run.model, run.head = self.build(run)
        run.task = self.make_task(run, run.val)
        check_metric(recipe.train, run.task)  # a misspelt metric_for_best fails before the data is encoded
        run.train_enc = self.encode(run, run.train, "train")
        self._say(run, run.train_enc)
        if run.val is not None:
            run.val_enc = self.encode(run, run.val, "validation")
            self._say(run, run.val_enc)
        self.ready(run)
        for line in self.describe(run):
            log(line)
        items = self.train_items(run)
        val_items = self.eval_order(run, run.val_enc.items) if run.val_enc is not None else None
        return Prepared(run.model, run.task, items, val_items, run.tokenizer, order=self.order(run, items),
                        eval_seed=recipe.train.seed, seq_len=self.seq_len(run), unit=self.unit_of(run), frozen=run.frozen,
                        summary={**run.train_enc.summary, **self.summary(run)})

    def evaluation(self, req: EvalRequest) -> EvalSetup:
        run: Run[Rows] = Run(req.recipe, self.fit_tokenizer(req.recipe, req.preprocessor, training=False), req.log,
                             model=req.model, request=req)
        run.head = self.recognise(run)
        rows = self.eval_rows(run)
        pick = sample_positions(self.count(rows), req.sample)
        run.val = rows if pick is None else self.subset(rows, pick)
        run.task = self.make_task(run, run.val)
        run.val_enc = self.encode(run, run.val, "data")
        self._say(run, run.val_enc)
        self.ready(run)
        items = self.eval_order(run, run.val_enc.items) if pick is None else run.val_enc.items  # a sample keeps its order
        return EvalSetup(run.task, items, req.recipe.train.seed if self.eval_seed_from_recipe else 0,
                         {**self.eval_extras(run), **run.val_enc.summary}, self.finish(run))

    # ---- steps every family writes ---------------------------------------------------------------------------
    def read(self, source, recipe: Recipe, key: str, log: Log) -> Rows:
        """The examples of one source (a file, files, a hub dataset), checked; `key` names it in errors."""
        raise NotImplementedError

    def split(self, run: Run[Rows]) -> tuple[Rows, Optional[Rows]]:
        """Training and validation examples: data.validation, or held out of data.train (data/splits.held_out)."""
        raise NotImplementedError

    def subset(self, rows: Rows, positions: np.ndarray) -> Rows:
        """The examples at `positions` (default: the rows' own `subset`)."""
        return rows.subset(positions)  # type: ignore[attr-defined]

    def build(self, run: Run[Rows]) -> tuple[Any, Any]:
        """(model, head): the model to train and what later steps need of it."""
        raise NotImplementedError

    def recognise(self, run: Run[Rows]) -> Any:
        """Evaluation: check run.model is a model of this family (a one-line UserError otherwise); return its head."""
        raise NotImplementedError

    def make_task(self, run: Run[Rows], gold: Optional[Rows]) -> Task:
        """The engine Task; `gold`: the examples it evaluates (None: training without validation)."""
        raise NotImplementedError

    def encode(self, run: Run[Rows], rows: Rows, part: str) -> Encoded:
        """Items of `rows`; `part` is "train", "validation" or "data" (evaluation)."""
        raise NotImplementedError

    # ---- steps with defaults ---------------------------------------------------------------------------------
    def fit_tokenizer(self, recipe: Recipe, tokenizer, training: bool):
        return tokenizer

    def count(self, rows: Rows) -> int:
        return len(rows)  # type: ignore[arg-type]

    def eval_rows(self, run: Run[Rows]) -> Rows:
        """--data, else the training file (compress' importance batches), else the recipe's validation split."""
        req, data = run.request, run.recipe.data
        if req.data is not None:
            return self.read(req.data, run.recipe, "--data", run.log)
        if req.split == "train":
            return self.read(data.train, run.recipe, "data.train", run.log)
        return self.split(run)[1]

    def ready(self, run: Run[Rows]) -> None:
        """After encoding: what the Task needs of the encoded items (qa's windows, dpo's reference)."""

    def describe(self, run: Run[Rows]) -> Sequence[str]:
        """The family's log lines on a training set-up, after the items' own."""
        return ()

    def train_items(self, run: Run[Rows]) -> Sequence:
        return run.train_enc.items

    def order(self, run: Run[Rows], items: Sequence) -> Optional[Callable[[np.random.Generator, int], np.ndarray]]:
        return length_grouped(items)

    def eval_order(self, run: Run[Rows], items: list) -> list:
        """Evaluation items shortest first: batches need almost no padding (metrics do not depend on order)."""
        return by_length(items)

    def seq_len(self, run: Run[Rows]) -> Optional[int]:
        return None

    def unit_of(self, run: Run[Rows]) -> str:
        return self.unit

    def summary(self, run: Run[Rows]) -> dict:
        """Keys of metrics.json beside the training items' own."""
        return {}

    def eval_extras(self, run: Run[Rows]) -> dict:
        return {}

    def finish(self, run: Run[Rows]) -> Optional[Callable[[dict], None]]:
        """Evaluation: what runs after the metrics (write the predictions, draw the confusion matrix)."""
        return None

    # ---- the other commands (None: the family has none) -------------------------------------------------------
    render: Optional[Callable[[dict], str]] = None  # `ftkit eval`'s table (default: one metric per line)
    predict: Optional[Callable[[PredictRequest], Iterator]] = None  # `ftkit predict`: one result (or Skipped) per input
    corpus: Optional[Callable[[Recipe], Any]] = None  # rows of text a new tokenizer trains on (default: data.train)

    @staticmethod
    def _say(run: Run[Rows], enc: Encoded) -> None:
        if enc.note:
            run.log(enc.note)


class TaskSpec(Family):
    """A family written as functions: its own prepare and evaluation (LM blocks, masked encoders, images, span
    corruption: sequences the template does not describe), with the same type for the workflows."""

    def __init__(self, entry: TaskEntry, prepare: Callable[..., Prepared], evaluation: Callable[[EvalRequest], EvalSetup],
                 render: Optional[Callable[[dict], str]] = None, predict: Optional[Callable[[PredictRequest], Iterator]] = None,
                 corpus: Optional[Callable[[Recipe], Any]] = None):
        self.entry = entry
        self.prepare, self.evaluation = prepare, evaluation  # type: ignore[method-assign]
        self.render, self.predict, self.corpus = render, predict, corpus
