"""Preference tuning (task dpo): the engine Task and SPEC (prepare, evaluation, render).

A batch holds B pairs as 2B rows, the B prompt+chosen rows first, then the B prompt+rejected ones, padded on the
right: chosen and rejected go through the model in ONE forward (TRL's concatenated batch). A reply's log-prob is the
sum of its tokens' log-probs, the prompt masked; the logits are computed only at positions some row's reply token
is predicted from (`logits_to_keep` as an index tensor, as sft), and the softmax only at the reply tokens.

The reference of sigmoid / ipo: the same model with its adapter disabled (peft's disable_adapter(): no second copy;
finetune.strategy lora / prefix / prompt), a frozen copy (full / freeze: Prepared.frozen, the train workflow keeps it
in eval mode without gradients), or log-probs computed once before training (dpo.precompute_ref_logps, refcache.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine import rundir
from ftkit.engine.batches import length_grouped_order
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.build import build_model
from ftkit.models.strategy import is_peft
from ftkit.recipe import load_recipe
from ftkit.tasks.family import Encoded
from ftkit.tasks.preference import data
from ftkit.tasks.preference.entry import ENTRY
from ftkit.tasks.preference.losses import LOSSES, at_start
from ftkit.tasks.preference.refcache import attach
from ftkit.tasks.preference.section import REFERENCE_FREE
from ftkit.tasks.sft.generate import render as render_generation
from ftkit.tasks.sft.task import ChatFamily, _takes_logits_to_keep
from ftkit.tasks.spec import EvalRequest

STATS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
         "logps/accuracies")


def _inner(model):
    return getattr(model, "module", model)  # under DDP


class Preference(TaskBase):
    name = "dpo"
    metrics = {"loss": False, "rewards/accuracies": True, "rewards/margins": True}

    def __init__(self, pad_id: int, cfg, reference: str, ref_model=None, out: Optional[str] = None):
        """reference: adapter (the policy with its adapter disabled), frozen (ref_model), cached (log-probs in the
        batch), self (the model itself: rewards 0, `ftkit eval` of a base model) or none (simpo, orpo)."""
        self.pad_id, self.cfg, self.reference, self.ref_model, self.out = int(pad_id), cfg, reference, ref_model, out
        self.loss_fn = LOSSES[cfg.loss]
        self.batches_seen = 0  # training batches, for the sanity guards of the first ones
        self.train_sums: dict[str, float] = {}

    # --- batches
    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        rows = [(ex["prompt"], ex["chosen"]) for ex in examples] + [(ex["prompt"], ex["rejected"]) for ex in examples]
        width = max(len(p) + len(r) for p, r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        reply = np.zeros((len(rows), width), dtype=bool)
        for i, (p, r) in enumerate(rows):
            ids[i, :len(p)], ids[i, len(p):len(p) + len(r)] = p, r
            mask[i, :len(p) + len(r)] = 1
            reply[i, len(p):len(p) + len(r)] = True
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask), "reply": torch.from_numpy(reply)}
        if "ref" in examples[0]:
            batch["ref"] = torch.tensor(np.concatenate([[ex["ref"][0] for ex in examples], [ex["ref"][1] for ex in examples]]),
                                        dtype=torch.float32)
        return batch

    def count_targets(self, batch) -> int:
        return int(batch["input_ids"].shape[0]) // 2  # pairs: the loss is a mean over pairs

    def count_examples(self, batch) -> int:
        return int(batch["input_ids"].shape[0]) // 2

    def count_tokens(self, batch) -> int:
        return int(batch["attention_mask"].sum())

    # --- log-probs and the loss
    @staticmethod
    def logps(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed log-prob of each row's reply tokens, their number), fp32, one value per row."""
        ids = batch["input_ids"]
        target = batch["reply"][:, 1:]  # position t predicts token t + 1
        keep = target.any(0).nonzero().flatten()
        inputs = {"input_ids": ids, "attention_mask": batch["attention_mask"], "use_cache": False}
        if _takes_logits_to_keep(model):
            logits = model(**inputs, logits_to_keep=keep).logits
        else:
            logits = model(**inputs).logits[:, keep]
        sel = target[:, keep]
        tok = -F.cross_entropy(logits[sel].float(), ids[:, 1:][:, keep][sel], reduction="none")
        row = torch.arange(ids.shape[0], device=ids.device)[:, None].expand_as(sel)[sel]
        sums = torch.zeros(ids.shape[0], device=ids.device, dtype=torch.float32).index_add(0, row, tok)
        return sums, sel.sum(1).float()

    def reference_logps(self, model, batch) -> Optional[torch.Tensor]:
        if self.reference == "none":
            return None
        if self.reference == "cached":
            return batch["ref"]
        with torch.no_grad():
            if self.reference == "adapter":
                inner = _inner(model)
                with inner.disable_adapter():
                    return self.logps(inner, batch)[0]
            if next(self.ref_model.parameters()).device != batch["input_ids"].device:
                self.ref_model.to(batch["input_ids"].device)
            return self.logps(self.ref_model, batch)[0]

    def terms(self, model, batch) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """(per-pair losses, summed statistics, policy log-probs of the 2B rows)."""
        sums, counts = self.logps(model, batch)
        ref = sums.detach() if self.reference == "self" else self.reference_logps(model, batch)  # self: one forward
        pc, pr = sums.chunk(2)
        nc, nr = counts.clamp(min=1).chunk(2)
        rc, rr = ref.float().chunk(2) if ref is not None else (None, None)
        loss, wc, wr, lc, lr = self.loss_fn(self.cfg.beta, self.cfg.gamma, pc, pr, rc, rr, nc, nr)
        stats = {"rewards/chosen": wc.sum(), "rewards/rejected": wr.sum(), "rewards/accuracies": (wc > wr).sum(),
                 "rewards/margins": (wc - wr).sum(), "logps/chosen": lc.sum(), "logps/rejected": lr.sum(),
                 # reference-free, per token: a base model's own preference (its implicit rewards are all 0)
                 "logps/accuracies": (pc / nc > pr / nr).sum()}
        return loss, {k: float(v.detach()) for k, v in stats.items()}, sums

    def loss(self, model, batch) -> torch.Tensor:
        losses, stats, sums = self.terms(model, batch)
        self.batches_seen += 1
        if self.batches_seen <= self.cfg.guard_steps:
            self._guard(model, losses, stats, sums, int(losses.shape[0]))
        for k, v in (*stats.items(), ("loss", float(losses.detach().sum())), ("pairs", float(losses.shape[0]))):
            self.train_sums[k] = self.train_sums.get(k, 0.0) + v
        return losses.sum()  # the engine divides by the pairs of the whole accumulation window

    # --- sanity guards (the first training batches)
    def _stop(self, what: str) -> UserError:
        last = rundir.latest_checkpoint(Path(self.out)) if self.out else None
        return UserError(f"dpo: {what} at training batch {self.batches_seen}; stopped, last good checkpoint: {last or 'none'}")

    def _guard(self, model, losses, stats, sums, pairs: int) -> None:
        if not torch.isfinite(sums).all():
            raise self._stop("a log-prob is NaN or infinite (lower train.lr, or check the precision)")
        if bool((sums == 0).all()):
            raise self._stop("every reply's log-prob is 0 (no reply token is scored: the prompt / reply masks are "
                             "wrong), so the loss stays at its start")
        margin = stats["rewards/margins"] / pairs
        if abs(margin) > self.cfg.max_margin:
            raise self._stop(f"mean reward margin {margin:,.1f} above dpo.max_margin {self.cfg.max_margin:g} (the "
                             f"policy ran away from its reference: lower train.lr or raise dpo.beta)")
        if self.batches_seen == 1 and self.cfg.loss in ("sigmoid", "ipo") and self._starts_at_reference(model):
            want, got = at_start(self.cfg.loss, self.cfg.beta), float(losses.detach().mean())
            if abs(got - want) > 0.02 * max(1.0, want):
                raise self._stop(f"the first loss is {got:.4f}, but a policy equal to its reference gives {want:.4f} "
                                 f"({'ln 2' if self.cfg.loss == 'sigmoid' else '(1/(2 beta))^2'}): the reference is not "
                                 f"the starting model (a cache of another model or data, or dropout left on)")

    def _starts_at_reference(self, model) -> bool:
        """True when the policy is its reference now (a fresh LoRA adapter: every lora_B is 0; a full fine-tune:
        weights equal to the frozen copy's), so the first loss is known."""
        inner = _inner(model)
        lora_b = [p for n, p in inner.named_parameters() if "lora_B" in n]
        if lora_b:
            return all(not p.any() for p in lora_b)
        if self.reference == "frozen":
            mine = dict(inner.named_parameters())
            return all(torch.equal(mine[n], p) for n, p in self.ref_model.named_parameters() if n in mine)
        return False

    # --- training-log metrics (engine: read at each log step, summed over ranks)
    def take_train_sums(self) -> dict[str, float]:
        sums, self.train_sums = self.train_sums, {}
        return sums

    def train_metrics(self, totals: dict[str, float]) -> dict[str, float]:
        n = max(totals.get("pairs", 0.0), 1.0)
        return {k: totals[k] / n for k in STATS[:-1] if k in totals}

    # --- evaluation
    def eval_step(self, model, batch) -> dict:
        losses, stats, _ = self.terms(model, batch)
        return {"loss_sum": float(losses.sum()), "count": int(losses.shape[0]), **stats}

    def compute_metrics(self, totals) -> dict:
        n = max(int(totals.get("count", 0)), 1)
        out = {"loss": float(totals.get("loss_sum", 0.0)) / n}
        out.update({k: float(totals.get(k, 0.0)) / n for k in STATS})
        out["pairs"] = int(totals.get("count", 0))
        return out


def _no_dropout(model) -> None:
    """Dropout off in the policy, as TRL's disable_dropout: its log-probs are compared with the reference's."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if isinstance(getattr(m, "attention_dropout", None), float):
            m.attention_dropout = 0.0


def _encode(tokenizer, pairs, cap: int, key: str, log, name: str):
    enc = data.encode(tokenizer, pairs, cap)
    if not enc.items:
        raise UserError(f"{key}: all {enc.skipped:,} {name} pairs are longer than {cap} tokens (prompt plus the longer "
                        f"reply; longest {enc.longest:,}); raise data.block_size")
    log(data.describe(name, pairs, enc, cap))
    return enc


def _reference_for_eval(req: EvalRequest, tokenizer, cfg):
    """(kind, model) of `ftkit eval`: the adapter disabled; else the model this one was fine-tuned from (its recipe.yaml);
    else the model itself (a base model scored through --recipe: every implicit reward 0)."""
    if cfg.loss in REFERENCE_FREE:
        return "none", None
    if is_peft(req.model):
        return "adapter", None
    saved = Path(req.path) / "recipe.yaml"
    if saved.is_file():
        base = load_recipe(saved).model
        if base.from_pretrained and base.from_pretrained != req.recipe.model.from_pretrained:
            req.log(f"reference: {base.from_pretrained} (the model it was fine-tuned from)")
            ref = build_model(req.recipe.model_copy(update={"model": base}), tokenizer, ENTRY).eval()
            return "frozen", ref.requires_grad_(False)
    req.log("reference: the model itself (a starting point): the implicit rewards are 0; logps/accuracies is its own "
            "preference (per-token log-prob of chosen above rejected's)")
    return "self", None


def render(r: dict) -> str:
    if "exact_match" in r:
        return render_generation(r)
    keys = ["model", "data", "pairs", "loss", *STATS, "skipped_longer_than_block"]
    w = max(len(k) for k in keys)
    return "\n".join(f"{k:<{w}}  {r[k]:,.4f}" if isinstance(r.get(k), float) else f"{k:<{w}}  {r.get(k)}" for k in keys)


class PreferenceTuning(ChatFamily[data.Pairs]):
    """Preference pairs -> the chat model (and its reference) -> prompt + chosen / rejected rows through the chat
    template; evaluation scores held-out pairs, or (--generate) sft's generation evaluation."""

    entry = ENTRY
    unit = "preference pairs (chosen and rejected rows in one batch), length-grouped"
    section = "dpo"
    eval_seed_from_recipe = True

    def read(self, source, recipe, key, log):
        return data.load(source, recipe.dpo, key)

    def split(self, run):  # read (and checked) before the model loads
        return data.train_and_validation(run.recipe.data, run.recipe.dpo, run.recipe.train.seed)

    def build(self, run):
        model, cap = super().build(run)
        if run.recipe.train.dropout is None:
            _no_dropout(model)
        return model, cap

    def make_task(self, run, gold):
        recipe, cfg = run.recipe, run.recipe.dpo
        if not run.training:
            kind, ref = _reference_for_eval(run.request, run.tokenizer, cfg)
            return Preference(run.tokenizer.pad_token_id, cfg, kind, ref)
        ref_model = None
        if cfg.loss in REFERENCE_FREE:
            reference = "none"
        elif cfg.precompute_ref_logps:
            reference = "cached"  # the log-probs are attached to the items once they are encoded (ready)
        elif recipe.finetune.strategy in ("lora", "prefix", "prompt"):
            reference = "adapter"
        else:
            ref_model = copy.deepcopy(run.model)
            reference, run.frozen = "frozen", (ref_model,)
        return Preference(run.tokenizer.pad_token_id, cfg, reference, ref_model, recipe.output_dir)

    def encode(self, run, rows, part):
        key = "data.block_size" if run.training else "--block-size"
        enc = _encode(run.tokenizer, rows, run.head, key, run.log, part)
        summary = {"skipped_longer_than_block": enc.skipped}
        if part == "train":
            summary = {"train_pairs": len(enc.items), **summary, "dialogue_continued_in_reply": rows.continued}
        return Encoded(enc.items, "", summary if part != "validation" else {})

    def ready(self, run):
        if run.training and run.task.reference == "cached":
            sets = [run.train_enc.items] + ([run.val_enc.items] if run.val_enc is not None else [])
            attach(run.model, sets, Preference(run.tokenizer.pad_token_id, run.recipe.dpo, "none"), run.recipe, run.accelerator, run.log)

    def describe(self, run):
        cfg = run.recipe.dpo
        said = {"none": "none (reference-free)", "cached": "log-probs computed once before training (cached)",
                "adapter": "the model with its adapter disabled (no copy)",
                "frozen": "a frozen copy of the starting model"}[run.task.reference]
        return (f"dpo | loss {cfg.loss}, beta {cfg.beta:g}" + (f", gamma {cfg.gamma:g}" if cfg.loss == "simpo" else "")
                + f" | reference: {said}",)

    def order(self, run, items):
        lengths = np.array([data.length(it) for it in items])
        return lambda rng, batch: length_grouped_order(lengths, batch, rng)

    def eval_order(self, run, items):
        return sorted(items, key=data.length)

    def seq_len(self, run):
        lengths = [data.length(it) for it in run.train_enc.items + (run.val_enc.items if run.val_enc else [])]
        return 2 * max(lengths)

    render = staticmethod(render)


SPEC = PreferenceTuning()
