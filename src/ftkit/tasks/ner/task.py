"""Token classification (NER): summed cross-entropy over labelled pieces; entity-level metrics over words.

Training follows run_ner (first piece of each word labelled, the rest -100 unless label_all_tokens).
Evaluation scores *words*, not pieces: each word's prediction is the argmax at its first piece,
found by the `word_key` each item carries (items.py), then merged per sentence and
compared with the gold tags of the evaluation sentences (`gold`), whatever windows they were cut
into. A word with no piece at all (e.g. a lone U+FE0F, which the uncased normaliser deletes) is
predicted O and still scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data import vocab_coverage
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.classifier import build_classifier, checkpoint_labels, input_names, length_cap
from ftkit.tasks.family import Encoded, Family
from ftkit.tasks.ner import data as tagged
from ftkit.tasks.ner.entry import ENTRY
from ftkit.tasks.ner.items import WORDS_PER_SENTENCE, check_tokenizer, encode
from ftkit.tasks.ner.metrics import entity_scores
from ftkit.tasks.ner.predict import predict


class TokenClassification(TaskBase):
    name = "ner"
    keep_best = True

    def __init__(self, tokenizer, labels: list[str], gold=None):
        from transformers import DataCollatorForTokenClassification

        self.labels = list(labels)
        self.gold = gold  # data.Tagged of the evaluation sentences
        self._pad = DataCollatorForTokenClassification(tokenizer, padding="longest", return_tensors="pt")
        self.metrics = {"f1": True, "precision": True, "recall": True, "accuracy": True, "loss": False}

    def collate(self, examples: list[dict], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        keys = [ex["word_key"] for ex in examples]
        batch = dict(self._pad([{k: v for k, v in ex.items() if k != "word_key"} for ex in examples]))
        width = batch["labels"].shape[1]
        left = self._pad.tokenizer.padding_side == "left"
        batch["word_key"] = torch.tensor([([-1] * (width - len(k)) + k) if left else (k + [-1] * (width - len(k)))
                                          for k in keys], dtype=torch.long)
        return batch

    def count_targets(self, batch) -> int:
        return int((batch["labels"] != -100).sum())

    @staticmethod
    def logits(model, batch) -> torch.Tensor:
        return model(**{k: v for k, v in batch.items() if k not in ("labels", "word_key")}).logits

    def loss(self, model, batch) -> torch.Tensor:
        logits = self.logits(model, batch).float()
        return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, reduction="sum")

    def eval_step(self, model, batch) -> dict:
        logits = self.logits(model, batch).float()
        labels = batch["labels"]
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
        first = batch["word_key"] >= 0
        return {"loss_sum": loss.item(), "count": int((labels != -100).sum()),
                "pred": logits.argmax(-1)[first].cpu().numpy(), "key": batch["word_key"][first].cpu().numpy()}

    def word_predictions(self, totals) -> tuple[list[list[str]], list[list[str]], int]:
        """(gold, predicted) tag sequences of the sentences that were evaluated, and words predicted O for lack of a piece."""
        keys = np.asarray(totals.get("key", []), dtype=np.int64)
        preds = np.asarray(totals.get("pred", []), dtype=np.int64)
        by_sentence: dict[int, dict[int, int]] = {}
        for k, p in zip(keys.tolist(), preds.tolist()):
            by_sentence.setdefault(k // WORDS_PER_SENTENCE, {})[k % WORDS_PER_SENTENCE] = p
        gold, pred, missing = [], [], 0
        for s in sorted(by_sentence):
            words = by_sentence[s]
            tags = self.gold.tags[s]
            missing += len(tags) - len(words)
            gold.append(list(tags))
            pred.append([self.labels[words[w]] if w in words else "O" for w in range(len(tags))])
        return gold, pred, missing

    def compute_metrics(self, totals) -> dict:
        gold, pred, missing = self.word_predictions(totals)
        scores = entity_scores(gold, pred)
        out = {k: scores[k] for k in ("f1", "precision", "recall", "accuracy")}
        out["loss"] = float(totals.get("loss_sum", 0.0)) / max(int(totals.get("count", 0)), 1)
        out.update(sentences=len(gold), words=sum(map(len, gold)), entities=scores["entities"],
                   predicted_entities=scores["predicted_entities"], words_without_pieces=missing,
                   per_type=scores["per_type"])
        return out

    def nothing_learned(self, metrics: dict) -> Optional[str]:
        if metrics.get("predicted_entities") != 0 or not metrics.get("entities"):
            return None
        return (f"no entity predicted in {metrics['sentences']:,} validation sentences "
                f"({metrics['entities']:,} entities there): F1 0")


def render(r: dict) -> str:
    heads = [("model", r["model"]), ("data", r["data"]),
             ("sentences", f"{r['sentences']:,} ({r['words']:,} words, {r['entities']:,} entities; "
                           f"{r['predicted_entities']:,} predicted)"),
             ("precision", f"{r['precision']:.4f}"), ("recall", f"{r['recall']:.4f}"), ("F1", f"{r['f1']:.4f}"),
             ("token accuracy", f"{r['accuracy']:.4f}"), ("loss", f"{r['loss']:.4f}")]
    hw = max(len(k) for k, _ in heads)
    lines = [f"{k:<{hw}}  {v}" for k, v in heads] + [""]
    w = max(8, *(len(n) for n in r["per_type"])) if r["per_type"] else 8
    lines.append(f"{'type':<{w}}  precision  recall      f1  support")
    for name, s in r["per_type"].items():
        lines.append(f"{name:<{w}}  {s['precision']:>9.4f}  {s['recall']:>6.4f}  {s['f1']:>6.4f}  {s['support']:>7,}")
    return "\n".join(lines)


def corpus(recipe):
    """What a new tokenizer trains on: each training sentence's tokens joined by spaces."""
    import datasets


    sents = tagged.load(recipe.data.train, recipe.data, recipe.ner, "data.train")
    return datasets.Dataset.from_dict({recipe.data.text_column: [" ".join(t) for t in sents.tokens]})


@dataclass(frozen=True)
class Head:
    labels: list[str]  # tag names in the head's order
    cap: int  # pieces per window, the model's positions permitting
    names: list[str]  # the model's inputs (input_ids, attention_mask, token_type_ids ...)


class TokenTagging(Family[tagged.Tagged]):
    """Tagged sentences -> a token classifier over the training tags -> word-piece windows (first piece labelled)."""

    entry = ENTRY
    unit = "windows, length-grouped"

    def fit_tokenizer(self, recipe, tokenizer, training):
        return check_tokenizer(tokenizer, ("tokenizer" if recipe.tokenizer else "model.from_pretrained") if training else "--model")

    def read(self, source, recipe, key, log):
        return tagged.normalise(tagged.load(source, recipe.data, recipe.ner, key), recipe.ner.tag_scheme)

    def split(self, run):
        train, val = tagged.train_and_validation(run.recipe.data, run.recipe.ner, run.recipe.train.seed)
        if val is not None and run.training:
            tagged.check_known(val, tagged.label_list(train.tags), "data.train")
        return train, val

    def subset(self, rows, positions):
        return tagged.subset(rows, positions)

    def build(self, run):
        model, labels = build_classifier(run.recipe, ENTRY, run.tokenizer, tagged.label_list(run.train.tags), run.log,
                                         "token-classification head", "tags")
        return model, Head(labels, length_cap(run.recipe.data.block_size, model.config, run.log), input_names(model, run.tokenizer))

    def recognise(self, run):
        labels = checkpoint_labels(run.model.config, ENTRY)
        if labels is None:
            raise UserError(f"--model: {run.request.model_dir} is not a token classifier; fine-tune one with `ftkit finetune --task ner`")
        return Head(labels, length_cap(run.recipe.data.block_size, run.model.config), input_names(run.model, run.tokenizer))

    def eval_rows(self, run):
        sents = super().eval_rows(run)
        tagged.check_known(sents, run.head.labels, "the model's tags")
        return sents

    def make_task(self, run, gold):
        return TokenClassification(run.tokenizer, run.head.labels, gold=gold)

    def encode(self, run, rows, part):
        h = run.head
        items, cut = encode(rows, run.tokenizer, h.cap, {n: i for i, n in enumerate(h.labels)}, h.names,
                            run.recipe.ner.label_all_tokens if part == "train" else False)
        scored = "" if part == "train" else " (every word scored)"
        note = tagged.describe(part, rows) + (f"; {cut:,} longer than {h.cap} pieces cut into windows{scored}" if cut else "")
        return Encoded(items, note, {"windowed_sentences": cut} if part == "data" else {})

    def ready(self, run):
        if run.training:
            words = vocab_coverage.first_words(" ".join(s) for s in run.train.tokens)
            run.kept["coverage"] = vocab_coverage.coverage(run.tokenizer, words)

    def describe(self, run):
        labels = run.head.labels
        return (f"ner | {len(labels)} tags ({', '.join(labels[:7])}{', ...' if len(labels) > 7 else ''}) | inputs "
                f"{', '.join(run.head.names)}" + (" | label_all_tokens" if run.recipe.ner.label_all_tokens else ""),
                vocab_coverage.describe(run.kept["coverage"]))

    def summary(self, run):
        return {"labels": run.head.labels, "train_sentences": len(run.train), "vocabulary": run.kept["coverage"]}

    render = staticmethod(render)
    corpus = staticmethod(corpus)
    predict = staticmethod(predict)


SPEC = TokenTagging()
