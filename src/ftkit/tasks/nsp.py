"""BERT pre-training: masked LM + next-sentence prediction on sentence pairs (BertForPreTraining).

Items come from data/nsp_pairs.py (chunks of documents, and packs of one-sentence documents);
this collate draws each batch's random choices from `rng`: which pairs get a random B (half of
them), the split points, the negative documents, then the masks. Sequences are
[CLS] A [SEP] B [SEP] with token_type_ids 0 for [CLS] A [SEP] and 1 for B [SEP]; batches are padded
to their longest sequence.

Loss: as BERT, mean masked-LM loss + mean NSP loss (times masking.nsp_weight, 1 by default). The engine
divides the returned sum by the masked-token count of the window, so the NSP sum is scaled by (masked
tokens / NSP labels) of the batch: after the division it weighs as a mean, not as one more token.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data.nsp_pairs import PAIR
from ftkit.errors import UserError
from ftkit.tasks import lm_setup
from ftkit.tasks.masking import IGNORE
from ftkit.tasks.metrics import accuracy_vs_majority
from ftkit.tasks.mlm import MaskedLM, mlm_accumulators, mlm_metrics
from ftkit.tasks.spec import TaskSpec

IS_NEXT, RANDOM_NEXT = 0, 1  # BertForPreTraining's next_sentence_label convention


def balanced_coins(n: int, rng: np.random.Generator) -> np.ndarray:
    """n booleans, exactly half True (the odd one out is a fair coin), in random order."""
    k = n // 2 + int(n % 2 == 1 and rng.random() < 0.5)
    return rng.permutation(n) < k


class MaskedLMWithNSP(MaskedLM):
    name = "mlm+nsp"
    metrics = {"loss": False, "masked_accuracy": True, "nsp_accuracy": True, "perplexity": False}
    model_inputs = ("input_ids", "attention_mask", "token_type_ids")

    def check_model(self, model) -> None:
        inner = getattr(model, "module", model)
        if not hasattr(getattr(inner, "cls", None), "seq_relationship"):
            raise UserError(f"task: mlm+nsp needs a model with a next-sentence head (model_type bert -> BertForPreTraining); "
                            f"{type(inner).__name__} has none; use task: mlm for this model type")

    def collate(self, items: list, rng: np.random.Generator, probability: Optional[float] = None) -> dict[str, torch.Tensor]:
        is_pair = [it.kind == PAIR for it in items]
        coins = iter(balanced_coins(sum(is_pair), rng))
        seqs, types, nsp = [], [], []
        for it, pair in zip(items, is_pair):
            if pair:
                random_next = bool(next(coins))
                a, b = it.source.pair(it, random_next, rng)
                seqs.append(np.concatenate([[self.cls_id], a, [self.sep_id], b, [self.sep_id]]))
                types.append(np.concatenate([np.zeros(len(a) + 2, np.int64), np.ones(len(b) + 1, np.int64)]))
                nsp.append(RANDOM_NEXT if random_next else IS_NEXT)
            else:
                parts = [np.concatenate([s, [self.sep_id]]) for s in it.source.single(it)]
                seq = np.concatenate([[self.cls_id], *parts])[: it.source.max_tokens + 3]
                seq[-1] = self.sep_id  # a cut pack still ends with [SEP]
                seqs.append(seq)
                types.append(np.zeros(len(seq), np.int64))
                nsp.append(IGNORE)
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        tt = np.zeros((len(seqs), width), dtype=np.int64)
        att = np.zeros((len(seqs), width), dtype=np.int64)
        for i, (s, t) in enumerate(zip(seqs, types)):
            ids[i, :len(s)], tt[i, :len(t)], att[i, :len(s)] = s, t, 1
        inputs, labels = self.mask(ids, rng, probability or self.masking.probability)
        return {"input_ids": inputs, "attention_mask": torch.from_numpy(att), "token_type_ids": torch.from_numpy(tt),
                "labels": labels, "next_sentence_label": torch.tensor(nsp, dtype=torch.long)}

    def _forward(self, model, batch):
        self.check_model(model)
        logits, targets, out = self.head.logits(model, batch, self._inputs(batch))
        nsp_labels = batch["next_sentence_label"]
        keep = nsp_labels != IGNORE
        return logits, targets, out.seq_relationship_logits[keep].float(), nsp_labels[keep]

    def loss(self, model, batch) -> torch.Tensor:
        logits, targets, nsp_logits, nsp_labels = self._forward(model, batch)
        mlm = F.cross_entropy(logits.float(), targets, reduction="sum")
        if nsp_labels.numel() == 0:
            return mlm
        nsp = F.cross_entropy(nsp_logits, nsp_labels, reduction="sum")
        return mlm + nsp * (self.masking.nsp_weight * max(targets.numel(), 1) / nsp_labels.numel())

    def eval_step(self, model, batch) -> dict:
        logits, targets, nsp_logits, nsp_labels = self._forward(model, batch)
        acc = mlm_accumulators(logits, targets)
        acc.update(nsp_loss_sum=F.cross_entropy(nsp_logits, nsp_labels, reduction="sum").item() if len(nsp_labels) else 0.0,
                   nsp_predictions=nsp_logits.argmax(-1).cpu().numpy(), nsp_labels=nsp_labels.cpu().numpy())
        return acc

    def compute_metrics(self, totals) -> dict:
        m = mlm_metrics(totals, self.tokenizer)
        nsp = accuracy_vs_majority(totals.get("nsp_predictions", np.zeros(0)), totals.get("nsp_labels", np.zeros(0)))
        nsp_loss = totals.get("nsp_loss_sum", 0.0) / max(nsp["count"], 1)
        out = {"loss": m["loss"] + nsp_loss, "masked_accuracy": m["masked_accuracy"], "nsp_accuracy": nsp["accuracy"],
               "perplexity": m["perplexity"], "mlm_loss": m["loss"], "nsp_loss": nsp_loss}
        out.update({k: v for k, v in m.items() if k not in out})
        out["nsp_pairs"] = nsp["count"]
        return out


def pairs(recipe, tokenizer, log, want_train: bool = True):
    """Sentence-pair items from the documents' sentences (train only when wanted: documents are read on a cache miss)."""
    from ftkit.data import masked_lm_data

    return masked_lm_data.pair_items(recipe, tokenizer, log, want_train=want_train)


def _prepare(recipe, tokenizer, acc, log):
    task = MaskedLMWithNSP(tokenizer, recipe.masking, lm_setup.tokenizer_key(recipe))
    return lm_setup.prepare(recipe, tokenizer, acc, log, task, pairs, unit="sentence-pair examples of at most")


SPEC = TaskSpec(prepare=_prepare,
                evaluation=lambda req: lm_setup.evaluation(req, MaskedLMWithNSP(req.preprocessor, req.recipe.masking, "--model"), pairs))
