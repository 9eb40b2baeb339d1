"""Masked language modelling (BERT / RoBERTa / DistilBERT): packed blocks, dynamic masking, loss over masked tokens.

Data: the corpus as one token stream (data/token_cache.py, the same cache as clm) cut into blocks
of block_size - 2 tokens; the collate wraps each in [CLS] ... [SEP] (<s> ... </s>). Examples are
separated inside the stream by the separator token ([SEP] / </s>, see token_cache.encode_texts):
as RoBERTa's FULL-SENTENCES packing, a block may span documents and the separator marks the border.

Speed: the prediction head's last layer (hidden -> vocabulary) costs more than a small encoder, so
it runs only at the masked positions (~15%): a forward pre-hook on the output embeddings keeps the
masked rows of its input. The model is still called through its own forward (DDP and autocast
wrappers see an ordinary call); logits come back as (masked tokens, vocabulary).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.batches import example_rngs
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.tasks.encoders import data as masked_lm_data
from ftkit.tasks.encoders.data import block_recipe
from ftkit.tasks.encoders.entry import MLM
from ftkit.tasks.encoders.masking import IGNORE, MaskingVocab, mask_tokens
from ftkit.tasks.encoders.section import MaskingSection
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.lm import setup as lm_setup
from ftkit.tasks.metrics import accuracy_vs_majority, token_loss

# Model types whose output embeddings are the head's last, per-position layer (checked in tests/encoders/test_mlm.py).
SPARSE_HEAD_TYPES = {"bert", "megatron-bert", "roberta", "distilbert", "xlm-roberta", "camembert", "electra", "modernbert"}


class SparseHead:
    """Runs the MLM decoder only where `where` is True, through a forward pre-hook on the output embeddings."""

    def __init__(self):
        self.where: Optional[torch.Tensor] = None

    def attach(self, model) -> bool:
        inner = getattr(model, "module", model)  # DDP wraps the model
        if getattr(inner.config, "model_type", None) not in SPARSE_HEAD_TYPES or inner.get_output_embeddings() is None:
            return False
        decoder = inner.get_output_embeddings()
        heads = decoder.__dict__.setdefault("_ftkit_sparse_heads", set())
        if id(self) not in heads:  # one hook per (head, module): another task's hook passes through (its `where` is None)
            decoder.register_forward_pre_hook(self._keep_masked)
            heads.add(id(self))
        return True

    def _keep_masked(self, _module, args):
        if self.where is None:
            return None
        return (args[0][self.where],) + tuple(args[1:])

    def logits(self, model, batch: dict, inputs: dict):
        """(logits at masked positions, their target ids, the model output)."""
        labels = batch["labels"]
        where = labels != IGNORE
        if self.attach(model):
            self.where = where
            try:
                out = model(**inputs)
            finally:
                self.where = None
            logits = out.logits if hasattr(out, "logits") else out.prediction_logits
        else:  # any other masked LM: full logits, then the masked rows
            out = model(**inputs)
            logits = (out.logits if hasattr(out, "logits") else out.prediction_logits)[where]
        return logits, labels[where], out


def check_tokenizer(tokenizer, where: str) -> None:
    for name in ("mask", "cls", "sep", "pad"):
        if getattr(tokenizer, f"{name}_token_id") is None:
            raise UserError(f"{where}: the tokenizer has no {name} token; masked-LM objectives need "
                            "[CLS] [SEP] [MASK] [PAD] (or <s> </s> <mask> <pad>): train a wordpiece or bpe tokenizer "
                            "with task mlm or mlm+nsp")


class MaskedLM(TaskBase):
    name = "mlm"
    metrics = {"loss": False, "masked_accuracy": True, "perplexity": False}
    model_inputs = ("input_ids", "attention_mask")

    def __init__(self, tokenizer, masking: MaskingSection, where: str = "tokenizer"):
        check_tokenizer(tokenizer, where)
        self.tokenizer, self.masking = tokenizer, masking
        self.vocab = MaskingVocab.from_tokenizer(tokenizer, masking.whole_word, where)
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
        self.head = SparseHead()
        self.eval_probability = masking.eval_probability or masking.probability

    def mask(self, ids: np.ndarray, rng, probability: float, lengths=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks of a (batch, length) array: `rng`, one generator per row (engine/batches.example_rngs); `lengths`,
        each row's tokens before its padding."""
        inputs, labels = mask_tokens(ids, self.vocab, probability, rng, self.masking.whole_word,
                                     tuple(self.masking.mask_random_keep), lengths)
        return torch.from_numpy(inputs), torch.from_numpy(labels)

    def collate(self, blocks: list, rng, probability: Optional[float] = None) -> dict[str, torch.Tensor]:
        body = np.stack(blocks).astype(np.int64)
        n = len(body)
        ids = np.concatenate([np.full((n, 1), self.cls_id), body, np.full((n, 1), self.sep_id)], axis=1)
        # each block masked by its own generator (per example: the same masks whatever batch or rank it lands in)
        inputs, labels = self.mask(ids, example_rngs(rng, n), probability or self.masking.probability)
        return {"input_ids": inputs, "labels": labels}  # full blocks: no padding, no attention mask

    def eval_collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return self.collate(examples, rng, self.eval_probability)

    def count_targets(self, batch) -> int:
        return int((batch["labels"] != IGNORE).sum())

    def _inputs(self, batch) -> dict:
        return {k: batch[k] for k in self.model_inputs if k in batch}

    def loss(self, model, batch) -> torch.Tensor:
        logits, targets, _ = self.head.logits(model, batch, self._inputs(batch))
        # Sum, not mean: the engine divides by the masked tokens of the whole accumulation window.
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def eval_step(self, model, batch) -> dict:
        logits, targets, _ = self.head.logits(model, batch, self._inputs(batch))
        return mlm_accumulators(logits, targets)

    def compute_metrics(self, totals) -> dict:
        return mlm_metrics(totals, self.tokenizer)


def mlm_accumulators(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    return {"mlm_loss_sum": F.cross_entropy(logits.float(), targets, reduction="sum").item(),
            "mlm_count": int(targets.numel()),
            "mlm_predictions": logits.argmax(-1).cpu().numpy(), "mlm_targets": targets.cpu().numpy()}


def mlm_metrics(totals: dict, tokenizer) -> dict:
    lm = token_loss(totals.get("mlm_loss_sum", 0.0), int(totals.get("mlm_count", 0)))
    acc = accuracy_vs_majority(totals.get("mlm_predictions", np.zeros(0)), totals.get("mlm_targets", np.zeros(0)))
    return {"loss": lm["loss"], "masked_accuracy": acc["accuracy"], "perplexity": lm["perplexity"],
            "majority_baseline_accuracy": acc["majority_baseline_accuracy"],
            "majority_token": tokenizer.convert_ids_to_tokens(acc["majority_id"]) if acc["majority_id"] >= 0 else None,
            "masked_tokens": acc["count"]}


def blocks(recipe, tokenizer, log, want_train: bool = True):
    """Packed blocks of block_size - 2 tokens (the collate adds [CLS] and [SEP])."""
    return masked_lm_data.mlm_blocks(recipe, tokenizer, log)


def _prepare(recipe, tokenizer, acc, log):
    task = MaskedLM(tokenizer, recipe.masking, lm_setup.tokenizer_key(recipe))
    return lm_setup.prepare(recipe, tokenizer, acc, log, task, MLM, blocks, stream_recipe=block_recipe(recipe))


SPEC = TaskSpec(MLM, prepare=_prepare,
                evaluation=lambda req: lm_setup.evaluation(req, MaskedLM(req.preprocessor, req.recipe.masking, "--model"), blocks))
