"""Extractive question answering (task qa): the engine Task and SPEC (prepare, evaluation, render, predict).

Loss: cross-entropy of the start position plus that of the end position, halved (BertForQuestionAnswering's,
but over the real tokens only: padding is left out of the softmax), summed over features (the engine divides by the features of the whole accumulation window). Evaluation keeps,
per feature, the n-best start and end logits inside the context and the null score ([CLS]) — a few numbers per
feature, so 2 processes gather them as they are — and compute_metrics turns them into one answer per question
(postprocess.py) scored with the official SQuAD logic (metrics.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.build import build_model as build
from ftkit.models.build import count_parameters
from ftkit.models.classifier import _quiet_transformers, input_names, length_cap
from ftkit.tasks.family import Encoded, Family
from ftkit.tasks.qa import data, features
from ftkit.tasks.qa import metrics as squad
from ftkit.tasks.qa.entry import ENTRY
from ftkit.tasks.qa.postprocess import answers
from ftkit.tasks.spec import EvalRequest, fresh_file, write_outputs

SIDE = ("feature", "ctx_start", "ctx_end", "cls_index")  # per-feature ints the task reads; never given to the model
LABELS = ("start_positions", "end_positions")


class EvalSet:
    """The evaluation questions and their features' bookkeeping (which question, character offsets)."""

    def __init__(self, examples, features):
        self.examples, self.features = examples, features
        self.contexts = [e.context for e in examples.items]
        self.references = {e.id: [t for t, _ in e.answers] for e in examples.items}


class QuestionAnswering(TaskBase):
    name = "qa"
    keep_best = True

    def __init__(self, pad_id: int, qa, eval_set: Optional[EvalSet] = None):
        self.pad_id, self.qa, self.eval_set = pad_id, qa, eval_set
        self.metrics = {"f1": True, "exact_match": True, "loss": False}
        self.last_answers: dict = {}  # the last evaluation's answer texts by question id (`ftkit eval` writes them)

    def collate(self, examples: list[dict], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Padded on the right to the batch's longest feature (positions and offsets stay as encoded)."""
        width = max(len(ex["input_ids"]) for ex in examples)
        batch = {}
        for key in examples[0]:
            if key in SIDE or key in LABELS:
                batch[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.long)
            else:
                fill = self.pad_id if key == "input_ids" else 0
                batch[key] = torch.tensor([ex[key] + [fill] * (width - len(ex[key])) for ex in examples], dtype=torch.long)
        return batch

    def count_targets(self, batch) -> int:
        return int(batch["input_ids"].shape[0])

    @staticmethod
    def logits(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, padding at -inf: the softmax over positions must not depend on how far a batch is
        padded (BertForQuestionAnswering's own loss counts the pad positions: another batch mix, another loss, and
        2 processes, each padding its half, trained otherwise than 1)."""
        out = model(**{k: v for k, v in batch.items() if k not in SIDE and k not in LABELS})
        start, end = out.start_logits.float(), out.end_logits.float()
        if "attention_mask" in batch:
            pad = batch["attention_mask"] == 0
            start, end = start.masked_fill(pad, float("-inf")), end.masked_fill(pad, float("-inf"))
        return start, end

    @staticmethod
    def _loss_sum(start, end, batch) -> torch.Tensor:
        return (F.cross_entropy(start, batch["start_positions"], reduction="sum")
                + F.cross_entropy(end, batch["end_positions"], reduction="sum")) / 2

    def loss(self, model, batch) -> torch.Tensor:
        start, end = self.logits(model, batch)
        return self._loss_sum(start, end, batch)

    def eval_step(self, model, batch) -> dict:
        start, end = self.logits(model, batch)
        out = {}
        if "start_positions" in batch:
            out.update(loss_sum=self._loss_sum(start, end, batch).item(), count=int(start.shape[0]))
        pos = torch.arange(start.shape[1], device=start.device)[None, :]
        inside = (pos >= batch["ctx_start"][:, None]) & (pos <= batch["ctx_end"][:, None])
        rows = torch.arange(start.shape[0], device=start.device)
        out.update(feature=batch["feature"].cpu().numpy(),
                   null=(start[rows, batch["cls_index"]] + end[rows, batch["cls_index"]]).cpu().numpy())
        for name, logits in (("s", start), ("e", end)):
            k = min(self.qa.n_best, logits.shape[1])
            val, idx = logits.masked_fill(~inside, float("-inf")).topk(k, dim=1)
            val, idx = val.cpu().numpy(), idx.cpu().numpy()
            if k < self.qa.n_best:  # short batches: same width on every rank (arrays are concatenated)
                pad = self.qa.n_best - k
                val = np.pad(val, ((0, 0), (0, pad)), constant_values=-np.inf)
                idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
            out[f"{name}_val"], out[f"{name}_idx"] = val, idx
        return out

    def answers(self, totals) -> dict:
        """{question id: postprocess.Answer} of the questions scored in `totals`."""
        es = self.eval_set
        if not len(totals.get("feature", [])):
            return {}
        found = answers(totals, es.features.example, es.features.offsets, es.contexts, self.qa.n_best,
                        self.qa.max_answer_length, self.qa.version_2)
        return {es.examples.items[i].id: a for i, a in found.items()}

    def compute_metrics(self, totals) -> dict:
        found = self.answers(totals)
        refs = {q: r for q, r in self.eval_set.references.items() if q in found}
        self.last_answers = {q: a.text for q, a in found.items()}
        if self.qa.version_2:
            scores = squad.squad_v2(self.last_answers, {q: a.null_gap for q, a in found.items()}, refs, self.qa.null_threshold)
            # what was scored: "no answer" where the null score wins at the threshold used
            self.last_answers = {q: "" if a.null_gap > scores["null_threshold"] else a.text for q, a in found.items()}
        else:
            scores = squad.squad_v1(self.last_answers, refs)
        out = {"f1": scores.pop("f1"), "exact_match": scores.pop("exact_match")}
        if "count" in totals:
            out["loss"] = float(totals["loss_sum"]) / max(int(totals["count"]), 1)
        out.update(scores)
        out.update(questions=len(refs), features=len(np.unique(np.asarray(totals.get("feature", []), dtype=np.int64))))
        return out

    def nothing_learned(self, metrics: dict) -> Optional[str]:
        if metrics.get("f1", 1.0) > 0 or not metrics.get("questions"):
            return None
        return f"no answer overlaps a reference in {metrics['questions']:,} validation questions: F1 0"


def _examples_note(name, examples, feats) -> str:
    return f"{data.describe(name, examples)} -> {feats.describe()}"


def _encode(examples, tokenizer, model, qa, log=None):
    cap = length_cap(qa.max_length, model.config, log)
    if qa.doc_stride >= cap:
        raise UserError(f"qa.doc_stride {qa.doc_stride} must be less than the window of {cap} tokens (qa.max_length, capped by the model's positions)")
    return features.encode(examples.items, tokenizer, cap, qa.doc_stride, input_names(model, tokenizer))


def build_model(recipe, tokenizer, log):
    """AutoModelForQuestionAnswering: a new model, or a pre-trained encoder with a new start/end head (qa_outputs)."""
    with _quiet_transformers():
        model = build(recipe, tokenizer, ENTRY)
    _, total = count_parameters(model)
    origin = "random weights" if recipe.model.model_type else f"from {recipe.model.from_pretrained}"
    log(f"model: {type(model).__name__} ({total / 1e6:.2f}M parameters), {origin}")
    return model


def _writer(req: EvalRequest, task: QuestionAnswering):
    """After the metrics: the answers as {id: text} (the official scripts' predictions file) beside the model,
    never over an existing file."""
    def write(result: dict) -> None:
        stem = Path(req.data).stem if req.data else "validation"
        write_outputs(req, result, fresh_file(req.path, f"predictions-{stem}", ".json"),
                      json.dumps(task.last_answers, ensure_ascii=False),
                      f"{len(task.last_answers):,} answers, the SQuAD predictions layout {{id: answer}}")

    return write


def render(r: dict) -> str:
    rows = [("model", r["model"]), ("data", r["data"]),
            ("questions", f"{r['questions']:,} ({r['features']:,} features; {r.get('answers_lost', 0):,} answers lost to the windows)"),
            ("exact match", f"{r['exact_match']:.2f}"), ("F1", f"{r['f1']:.2f}")]
    if "loss" in r:
        rows.append(("loss", f"{r['loss']:.4f}"))
    if "best_f1" in r:
        rows += [("null threshold", f"{r['null_threshold']:.4f}")]
        rows += [(f"{k.replace('_', ' ')}", f"{r[k]:.2f}") for k in ("HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1") if k in r]
        rows += [("best exact", f"{r['best_exact']:.2f} (threshold {r['best_exact_thresh']:.4f})"),
                 ("best F1", f"{r['best_f1']:.2f} (threshold {r['best_f1_thresh']:.4f})")]
    if "predictions" in r:
        rows.append(("predictions", r["predictions"]))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


class ExtractiveQA(Family[data.Examples]):
    """Question + context examples -> a start / end head -> windows of question and context (offsets kept); the
    evaluation questions and their windows go to the Task, which turns logits into answers."""

    entry = ENTRY
    unit = "features (question + context windows), length-grouped"

    def fit_tokenizer(self, recipe, tokenizer, training):
        return features.check_tokenizer(tokenizer, ("tokenizer" if recipe.tokenizer else "model.from_pretrained") if training else "--model")

    def read(self, source, recipe, key, log):
        return data.load(source, recipe.data, recipe.qa, key)

    def split(self, run):
        return data.train_and_validation(run.recipe.data, run.recipe.qa, run.recipe.train.seed)

    def subset(self, rows, positions):
        return data.Examples([rows.items[i] for i in positions], rows.repaired)

    def build(self, run):
        return build_model(run.recipe, run.tokenizer, run.log), None

    def recognise(self, run):
        if not ENTRY.fits(run.model.config.architectures):
            raise UserError(f"--model: {run.request.model_dir} is not a question-answering model; fine-tune one with `ftkit finetune --task qa`")

    def make_task(self, run, gold):
        return QuestionAnswering(run.tokenizer.pad_token_id or 0, run.recipe.qa)

    def encode(self, run, rows, part):
        feats = _encode(rows, run.tokenizer, run.model, run.recipe.qa, run.log if part == "train" else None)
        summary = {"train_questions": len(rows), "train_features": len(feats.items), "train_answers_lost": feats.lost,
                   "train_offsets_repaired": rows.repaired} if part == "train" else {"answers_lost": feats.lost}
        return Encoded(feats.items, _examples_note(part, rows, feats), summary if part != "validation" else {}, feats)

    def ready(self, run):
        if run.val_enc is not None:  # the questions the Task answers at each evaluation
            run.task.eval_set = EvalSet(run.val, run.val_enc.raw)

    def describe(self, run):
        qa = run.recipe.qa
        return (f"qa | windows of {qa.max_length} tokens, stride {qa.doc_stride} | answers up to {qa.max_answer_length} "
                f"tokens" + (" | SQuAD v2 (no-answer questions)" if qa.version_2 else ""),)

    def seq_len(self, run):
        return run.recipe.qa.max_length

    def finish(self, run):
        return _writer(run.request, run.task)

    @staticmethod
    def corpus(recipe):
        """What a new tokenizer trains on: every distinct context and every question."""
        ex = data.load(recipe.data.train, recipe.data, recipe.qa, "data.train")
        texts = list(dict.fromkeys(e.context for e in ex.items)) + [e.question for e in ex.items]
        return datasets.Dataset.from_dict({recipe.data.text_column: texts})

    @staticmethod
    def predict(req):
        from ftkit.tasks.qa.predict import predict  # predict.py imports this module (QuestionAnswering)

        return predict(req)

    render = staticmethod(render)


SPEC = ExtractiveQA()
