"""Token classification (NER): summed cross-entropy over labelled pieces; entity-level metrics over words.

Training follows run_ner (first piece of each word labelled, the rest -100 unless label_all_tokens).
Evaluation scores *words*, not pieces: each word's prediction is the argmax at its first piece,
found by the `word_key` each item carries (data/tagged_items.py), then merged per sentence and
compared with the gold tags of the evaluation sentences (`gold`), whatever windows they were cut
into. A word with no piece at all (e.g. a lone U+FE0F, which the uncased normaliser deletes) is
predicted O and still scored.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data.tagged_items import WORDS_PER_SENTENCE
from ftkit.tasks.entity_metrics import entity_scores


class TokenClassification:
    name = "ner"
    keep_best = True

    def __init__(self, tokenizer, labels: list[str], gold=None):
        from transformers import DataCollatorForTokenClassification

        self.labels = list(labels)
        self.gold = gold  # data.tagged.Tagged of the evaluation sentences
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

    eval_collate = collate

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
