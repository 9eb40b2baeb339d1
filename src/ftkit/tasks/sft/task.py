"""Instruction / chat fine-tuning of a causal LM: next-token loss on the assistant turns only (sft.train_on).

Items are {"input_ids", "train"} (data/chat_tokens.py); with sft.packing an item is a list of them, laid end to
end in one row with position ids restarting per example and NO attention mask: transformers then builds a
causal mask per example from the position-id resets (only without a mask and without a KV cache, hence
use_cache=False), so packed examples never attend to each other. The logits are computed only at the
positions some row of the batch trains on (`logits_to_keep` as an index tensor): with assistant-only loss
most positions are prompt, and the vocabulary projection plus its fp32 softmax is a large share of a
small LLM's step.
"""

from __future__ import annotations

import inspect
from typing import Optional

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data.chat_tokens import encode, pack, set_template
from ftkit.engine.batches import by_length, length_grouped
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.anatomy import unwrap
from ftkit.models.build import build_model
from ftkit.models.classifier import length_cap
from ftkit.tasks.family import Encoded, Family, Rows
from ftkit.tasks.metrics import token_loss
from ftkit.tasks.sft import data as chat
from ftkit.tasks.sft.entry import ENTRY
from ftkit.tasks.sft.generate import generation_setup
from ftkit.tasks.sft.generate import render as render_generation


class ChatSFT(TaskBase):
    name = "sft"
    metrics = {"loss": False, "perplexity": False}

    def __init__(self, pad_id: int, packed: bool = False):
        self.pad_id = int(pad_id)
        self.packed = packed

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        rows = [ex if isinstance(ex, list) else [ex] for ex in examples]
        width = max(sum(len(e["input_ids"]) for e in row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        labels = np.full((len(rows), width), -100, dtype=np.int64)
        pos = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            at = 0
            for e in row:
                n = len(e["input_ids"])
                ids[r, at:at + n] = e["input_ids"]
                labels[r, at:at + n] = np.where(e["train"], e["input_ids"], -100)
                pos[r, at:at + n] = np.arange(n)
                at += n
            mask[r, :at] = 1
            pos[r, at:] = np.arange(width - at)  # the padding forms a sequence of its own (never a target)
        batch = {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels),
                 "examples": torch.tensor(sum(len(row) for row in rows)), "tokens": torch.tensor(int(mask.sum()))}
        if self.packed:
            batch["position_ids"] = torch.from_numpy(pos)
        else:
            batch["attention_mask"] = torch.from_numpy(mask)
        return batch

    def count_targets(self, batch) -> int:
        return int((batch["labels"] != -100).sum())

    def count_examples(self, batch) -> int:
        return int(batch["examples"])

    def count_tokens(self, batch) -> int:
        return int(batch["tokens"])

    def logits_and_targets(self, model, batch):
        labels = batch["labels"]
        # position t predicts token t+1: keep the positions whose next token trains, in any row
        targets = labels[:, 1:] != -100
        keep = targets.any(0).nonzero().flatten()
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
        if _takes_logits_to_keep(model):
            logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
        else:  # an architecture without it: all positions, then the same selection
            logits = model(**inputs, use_cache=False).logits[:, keep]
        wanted = labels[:, 1:][:, keep]
        chosen = wanted != -100
        return logits[chosen].float(), wanted[chosen]

    def loss(self, model, batch) -> torch.Tensor:
        # Sum, not mean: the engine divides by the targets of the whole accumulation window.
        return F.cross_entropy(*self.logits_and_targets(model, batch), reduction="sum")

    def eval_step(self, model, batch) -> dict:
        return {"loss_sum": self.loss(model, batch).item(), "count": self.count_targets(batch)}

    def compute_metrics(self, totals) -> dict[str, float]:
        m = token_loss(totals.get("loss_sum", 0.0), int(totals.get("count", 0)))
        return {"loss": m["loss"], "perplexity": m["perplexity"], "target_tokens": int(totals["count"])}


def _takes_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(unwrap(model).forward).parameters


def _tokenizer(recipe, tokenizer):
    return set_template(tokenizer, recipe.sft.chat_template)


def _describe(name: str, enc, cap: int) -> str:
    trained = sum(int(i["train"].sum()) for i in enc.items)
    tokens = sum(len(i["input_ids"]) for i in enc.items)
    skip = f"; {enc.skipped:,} longer than data.block_size {cap} skipped (longest {enc.max_length:,})" if enc.skipped else ""
    return f"{name}: {len(enc.items):,} conversations, {tokens:,} tokens, {trained:,} trained ({100 * trained / max(tokens, 1):.0f}%){skip}"


def shared_system_prompt(conversations) -> Optional[str]:
    """The system turn every training conversation starts with (sft.system_prompt, or the same one in every row of
    messages data), else None: `ftkit chat` uses it by default, so the model is talked to as it was trained."""
    first = {m[0]["content"] if m and m[0]["role"] == "system" else None for m in conversations}
    return first.pop() if len(first) == 1 else None


def render(r: dict) -> str:
    if "exact_match" in r:
        return render_generation(r)
    keys = ["model", "data", "loss", "perplexity", "target_tokens", "skipped_longer_than_block"]
    w = max(len(k) for k in keys)
    return "\n".join(f"{k:<{w}}  {r[k]:,.4f}" if isinstance(r.get(k), float) else f"{k:<{w}}  {r.get(k)}" for k in keys)


def corpus(recipe):
    """What a new tokenizer trains on: the contents of every turn of the training conversations."""
    convs = chat.load(recipe.data.train, recipe.data, recipe.sft, "data.train")
    return datasets.Dataset.from_dict({recipe.data.text_column: ["\n".join(m["content"] for m in msgs)
                                                                 for msgs in convs.messages]})


class ChatFamily(Family[Rows]):
    """What the chat-model families (sft, dpo) share: the recipe section's chat template put on the tokenizer (a
    template that adds tokens needs finetune.strategy full: new embeddings must train), and `--generate`, which
    evaluates generated replies (generate.py) instead of the family's own metrics."""

    section = "sft"  # the recipe section holding chat_template

    def fit_tokenizer(self, recipe, tokenizer, training):
        vocab, key = len(tokenizer), f"{self.section}.chat_template"
        named = getattr(recipe, self.section).chat_template
        tokenizer = set_template(tokenizer, named, key)
        if training and len(tokenizer) > vocab and recipe.finetune.strategy != "full":
            raise UserError(f"{key} {named}: it adds {len(tokenizer) - vocab} tokens the model does not have, whose "
                            f"embeddings would stay untrained under finetune.strategy {recipe.finetune.strategy}; use "
                            f"finetune.strategy full, or a template of tokens the tokenizer has")
        return tokenizer

    def evaluation(self, req):
        if req.generate:
            return generation_setup(req, self.fit_tokenizer(req.recipe, req.preprocessor, training=False))
        return super().evaluation(req)

    def build(self, run):
        """The causal LM, its embeddings grown to the template's tokens; its head: the length cap."""
        model = build_model(run.recipe, run.tokenizer, self.entry)
        if len(run.tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(run.tokenizer))
        return model, length_cap(run.recipe.data.block_size, model.config, run.log)

    def recognise(self, run):
        if len(run.tokenizer) > run.model.get_input_embeddings().weight.shape[0]:
            key = f"{self.section}.chat_template"
            raise UserError(f"{key} {getattr(run.recipe, self.section).chat_template}: adds tokens {run.request.model_dir} "
                            f"does not have; evaluate with the template the model was trained with")
        return length_cap(run.recipe.data.block_size, run.model.config)


class ChatFineTuning(ChatFamily[chat.Conversations]):
    """Conversations -> the chat template's tokens, trained on the assistant turns (sft.train_on) -> a causal LM;
    evaluation: held-out loss, or (--generate) generated replies scored (generate.py)."""

    entry = ENTRY
    unit = "conversations, length-grouped"

    def read(self, source, recipe, key, log):
        return chat.load(source, recipe.data, recipe.sft, key)

    def split(self, run):
        return chat.train_and_validation(run.recipe.data, run.recipe.sft, run.recipe.train.seed)

    def make_task(self, run, gold):
        return ChatSFT(run.tokenizer.pad_token_id, packed=run.recipe.sft.packing and run.training)

    def encode(self, run, rows, part):
        cap = run.head
        enc = encode(run.tokenizer, rows, run.recipe.sft.train_on, cap)
        if not enc.items:
            what = {"train": "training examples", "validation": "validation examples", "data": "examples"}[part]
            raise UserError(f"{'data.block_size' if run.training else '--block-size'}: all {enc.skipped:,} {what} are longer "
                            f"than {cap} tokens (longest {enc.max_length:,})" + ("; raise data.block_size" if run.training else ""))
        summary = {"skipped_longer_than_block": enc.skipped} if part != "validation" else {}
        if part == "train":
            summary = {"train_conversations": len(enc.items), **summary, "system_prompt": shared_system_prompt(rows.messages)}
        return Encoded(enc.items, _describe(part, enc, cap), summary)

    def train_items(self, run):
        items = run.train_enc.items
        if run.recipe.sft.packing:  # packed once, in a seeded random order: blocks mix lengths as a packed corpus does
            return pack(items, run.head, np.random.default_rng(run.recipe.train.seed).permutation(len(items)))
        return items

    def order(self, run, items):
        return None if run.recipe.sft.packing else length_grouped(items)

    def eval_order(self, run, items):
        items = by_length(items)
        return pack(items, run.head, np.arange(len(items))) if run.training and run.recipe.sft.packing else items

    def unit_of(self, run):
        if run.recipe.sft.packing:
            return f"packed blocks of <= {run.head} tokens ({len(run.train_enc.items):,} conversations)"
        return self.unit

    render = staticmethod(render)
    corpus = staticmethod(corpus)


SPEC = ChatFineTuning()
