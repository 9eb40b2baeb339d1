"""BERT pre-training: masked LM + next-sentence prediction on sentence pairs (BertForPreTraining).

Items come from tasks/encoders/pairs.py (chunks of documents, and packs of one-sentence documents);
this collate draws each example's random choices from its own generator (engine/batches.example_rngs, seeded by
seed, epoch and example, so N processes pair and mask as 1 does): whether B is random (a fair coin, as BERT's
create_pretraining_data draws it per instance), the split point, the negative document, then the masks. Sequences are
[CLS] A [SEP] B [SEP] with token_type_ids 0 for [CLS] A [SEP] and 1 for B [SEP]; batches are padded
to their longest sequence.

Loss: as BERT, mean masked-LM loss + mean NSP loss (times masking.nsp_weight, 1 by default). The engine
divides the returned sum by the masked-token count of the window, so the NSP sum is scaled by (masked tokens /
NSP labels) of the window on all ranks (window_counts; of the batch outside training steps): after the division
it weighs as a mean over the global batch, not as one more token, and N ranks or k micro-batches give the loss
of one batch.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.batches import example_rngs
from ftkit.errors import UserError
from ftkit.tasks.encoders import data as masked_lm_data
from ftkit.tasks.encoders.entry import MLM_NSP
from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.mlm import MaskedLM, mlm_accumulators, mlm_metrics
from ftkit.tasks.encoders.pairs import PAIR
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.lm import setup as lm_setup
from ftkit.tasks.metrics import accuracy_vs_majority

IS_NEXT, RANDOM_NEXT = 0, 1  # BertForPreTraining's next_sentence_label convention


class MaskedLMWithNSP(MaskedLM):
    name = "mlm+nsp"
    metrics = {"loss": False, "masked_accuracy": True, "nsp_accuracy": True, "perplexity": False}
    model_inputs = ("input_ids", "attention_mask", "token_type_ids")

    def check_model(self, model) -> None:
        inner = getattr(model, "module", model)
        if not hasattr(getattr(inner, "cls", None), "seq_relationship"):
            raise UserError(f"task: mlm+nsp needs a model with a next-sentence head (model_type bert -> BertForPreTraining); "
                            f"{type(inner).__name__} has none; use task: mlm for this model type")

    def collate(self, items: list, rng, probability: Optional[float] = None) -> dict[str, torch.Tensor]:
        rngs = example_rngs(rng, len(items))
        seqs, types, nsp = [], [], []
        for it, own in zip(items, rngs):
            if it.kind == PAIR:
                # a coin per example, not "half of each batch": a batch's share would depend on how examples are
                # cut into batches and ranks (the expected share stays one half: tests/encoders/test_nsp.py)
                random_next = bool(own.random() < 0.5)
                a, b = it.source.pair(it, random_next, own)
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
        inputs, labels = self.mask(ids, rngs, probability or self.masking.probability, [len(q) for q in seqs])
        return {"input_ids": inputs, "attention_mask": torch.from_numpy(att), "token_type_ids": torch.from_numpy(tt),
                "labels": labels, "next_sentence_label": torch.tensor(nsp, dtype=torch.long)}

    def _forward(self, model, batch):
        self.check_model(model)
        logits, targets, out = self.head.logits(model, batch, self._inputs(batch))
        nsp_labels = batch["next_sentence_label"]
        keep = nsp_labels != IGNORE
        return logits, targets, out.seq_relationship_logits[keep].float(), nsp_labels[keep]

    def window_counts(self, batch) -> dict:
        return {"nsp_labels": int((batch["next_sentence_label"] != IGNORE).sum())}

    def loss(self, model, batch) -> torch.Tensor:
        logits, targets, nsp_logits, nsp_labels = self._forward(model, batch)
        mlm = F.cross_entropy(logits.float(), targets, reduction="sum")
        if nsp_labels.numel() == 0:
            return mlm
        nsp = F.cross_entropy(nsp_logits, nsp_labels, reduction="sum")
        w = self.window or {"targets": targets.numel(), "nsp_labels": nsp_labels.numel()}
        return mlm + nsp * (self.masking.nsp_weight * max(w["targets"], 1) / max(w["nsp_labels"], 1))

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
    return masked_lm_data.pair_items(recipe, tokenizer, log, want_train=want_train)


def _prepare(recipe, tokenizer, acc, log):
    task = MaskedLMWithNSP(tokenizer, recipe.masking, lm_setup.tokenizer_key(recipe))
    return lm_setup.prepare(recipe, tokenizer, acc, log, task, MLM_NSP, pairs, unit="sentence-pair examples of at most")


SPEC = TaskSpec(MLM_NSP, prepare=_prepare,
                evaluation=lambda req: lm_setup.evaluation(req, MaskedLMWithNSP(req.preprocessor, req.recipe.masking, "--model"), pairs))
