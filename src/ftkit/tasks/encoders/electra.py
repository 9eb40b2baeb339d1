"""ELECTRA pre-training (Clark et al. 2020): replaced-token detection, learning from every token, not 15 % of them.

Data and masking as the mlm task (packed blocks, masking.probability of the tokens selected, 80/10/10); the model
is tasks/electra_pair.ElectraPair (generator + discriminator, shared embeddings). Loss, as the paper:
mean generator MLM loss over the masked tokens + electra.disc_weight x mean discriminator loss over all tokens.
The engine divides the returned sum by the masked-token count of the window, so the discriminator's sum is
scaled by (masked tokens / scored tokens) of the window on all ranks (window_counts; as mlm+nsp scales its NSP
term), so N ranks or k micro-batches give the loss of one batch.

Metrics: loss (that objective), the discriminator's loss next to the loss of always answering the replaced share
(disc_prior_loss: equal means it has learned nothing but that share), accuracy over all tokens and precision /
recall / F1 of "replaced" (replaced tokens are a minority: accuracy alone flatters), the share of tokens replaced,
and the generator's masked-token accuracy.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ftkit.engine.batches import example_rngs
from ftkit.errors import UserError
from ftkit.tasks.encoders.data import block_recipe
from ftkit.tasks.encoders.electra_pair import ElectraPair, build_pair, load_generator, prior_loss, start_at_prior
from ftkit.tasks.encoders.entry import ELECTRA
from ftkit.tasks.encoders.mlm import MaskedLM, blocks, mlm_accumulators, mlm_metrics
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.lm import setup as lm_setup


class ElectraTask(MaskedLM):
    name = "electra"
    metrics = {"loss": False, "replaced_f1": True, "disc_accuracy": True, "disc_loss": False, "masked_accuracy": True}

    def __init__(self, tokenizer, masking, electra, where: str = "tokenizer", generator=None):
        super().__init__(tokenizer, masking, where)
        self.disc_weight = electra.disc_weight
        self.generator = generator  # `ftkit eval` of a saved discriminator: the generator saved beside it
        self._pair: Optional[ElectraPair] = None

    def collate(self, blocks: list, rng, probability: Optional[float] = None) -> dict:
        rngs = example_rngs(rng, len(blocks))
        batch = super().collate(blocks, rngs, probability)
        # each example's generator seeds its own replacement samples (ElectraPair.forward): per example, as its masks
        batch["sample_seed"] = torch.tensor([int(r.integers(0, 2**62)) for r in rngs], dtype=torch.int64)
        return batch

    @staticmethod
    def check_discriminator(model) -> None:
        if type(model).__name__ != "ElectraForPreTraining":
            raise UserError(f"task: electra trains an ELECTRA discriminator (model_type electra); got {type(model).__name__}")

    def check_model(self, model) -> None:
        inner = getattr(model, "module", model)
        if isinstance(inner, ElectraPair):
            return
        self.check_discriminator(inner)
        if self.generator is None:
            raise UserError("--model: an electra discriminator is evaluated with its generator, saved beside it "
                            "(DIR/generator): not found")

    def _outputs(self, model, batch):
        inner = getattr(model, "module", model)
        if not isinstance(inner, ElectraPair):  # a lone discriminator (`ftkit eval`): paired with its saved generator
            if self._pair is None or self._pair.discriminator is not inner:
                self._pair = ElectraPair(self.generator.to(next(inner.parameters()).device), inner, tie=False)
                self._pair.train(inner.training)
            model = self._pair
        keys = ("input_ids", "labels", "sample_seed", "attention_mask", "token_type_ids")
        return model(**{k: batch[k] for k in keys if k in batch})

    def window_counts(self, batch) -> dict:
        """Tokens the discriminator is scored on (ElectraPair.forward's `counted`: not padding)."""
        mask = batch.get("attention_mask")
        return {"scored": int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())}

    def loss(self, model, batch) -> torch.Tensor:
        out = self._outputs(model, batch)
        mlm = F.cross_entropy(out.gen_logits.float(), out.gen_targets, reduction="sum")
        scored = out.counted
        disc = F.binary_cross_entropy_with_logits(out.disc_logits.float()[scored], out.replaced[scored], reduction="sum")
        w = self.window or {"targets": out.gen_targets.numel(), "scored": int(scored.sum())}
        return mlm + disc * (self.disc_weight * max(w["targets"], 1) / max(w["scored"], 1))

    def eval_step(self, model, batch) -> dict:
        out = self._outputs(model, batch)
        acc = mlm_accumulators(out.gen_logits, out.gen_targets)
        scored = out.counted
        logits, truth = out.disc_logits.float()[scored], out.replaced[scored].bool()
        said = logits > 0
        acc.update(disc_loss_sum=F.binary_cross_entropy_with_logits(logits, truth.float(), reduction="sum").item(),
                   disc_count=int(truth.numel()), disc_correct=int((said == truth).sum()),
                   true_pos=int((said & truth).sum()), false_pos=int((said & ~truth).sum()),
                   false_neg=int((~said & truth).sum()))
        return acc

    def compute_metrics(self, totals) -> dict:
        m = mlm_metrics(totals, self.tokenizer)
        n = max(int(totals.get("disc_count", 0)), 1)
        tp, fp, fn = (int(totals.get(k, 0)) for k in ("true_pos", "false_pos", "false_neg"))
        precision = tp / max(tp + fp, 1)
        recall = tp / max(tp + fn, 1)
        disc_loss = totals.get("disc_loss_sum", 0.0) / n
        share = (tp + fn) / n
        return {"loss": m["loss"] + self.disc_weight * disc_loss, "replaced_f1": 2 * precision * recall / max(precision + recall, 1e-12),
                "disc_accuracy": totals.get("disc_correct", 0) / n, "disc_loss": disc_loss, "masked_accuracy": m["masked_accuracy"],
                "replaced_precision": precision, "replaced_recall": recall, "replaced_share": share,
                "disc_prior_loss": prior_loss(share),  # disc_loss at this value: detection has not started
                "generator_loss": m["loss"], "generator_perplexity": m["perplexity"], "scored_tokens": n,
                "masked_tokens": m["masked_tokens"]}


def _prepare(recipe, tokenizer, acc, log):
    task = ElectraTask(tokenizer, recipe.masking, recipe.electra, lm_setup.tokenizer_key(recipe))
    prep = lm_setup.prepare(recipe, tokenizer, acc, log, task, ELECTRA, blocks, stream_recipe=block_recipe(recipe))
    task.check_discriminator(prep.model)  # model_type electra, before the generator is built
    saved = load_generator(recipe.model.from_pretrained) if recipe.model.from_pretrained else None
    if not recipe.model.from_pretrained:  # a new discriminator: an untrained generator replaces ~every masked token
        start_at_prior(prep.model, recipe.masking.probability)
    prep.model = build_pair(prep.model, recipe.electra.generator_size, saved)
    g = prep.model.generator
    log(f"electra: generator {'from ' + recipe.model.from_pretrained if saved is not None else 'new'}, hidden "
        f"{g.config.hidden_size} x {g.config.num_hidden_layers} layers, "
        f"{sum(p.numel() for n, p in g.named_parameters() if 'embeddings' not in n) / 1e6:.2f}M parameters besides "
        f"the shared embeddings; discriminator loss weight {recipe.electra.disc_weight:g}")
    return prep


def _evaluation(req):
    task = ElectraTask(req.preprocessor, req.recipe.masking, req.recipe.electra, "--model", generator=load_generator(req.path))
    return lm_setup.evaluation(req, task, blocks)


SPEC = TaskSpec(ELECTRA, prepare=_prepare, evaluation=_evaluation)
