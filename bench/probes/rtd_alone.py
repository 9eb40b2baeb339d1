"""Replaced-token detection alone: can the discriminator of recipes/electra-movies.yaml learn to spot replacements
within the budget, with no generator in the way?

A plain transformers `ElectraForPreTraining` (the recipe's shape, random weights) on the recipe's packed blocks; 15 %
of the positions get a replacement drawn either uniformly from the vocabulary (`--replace uniform`: rare tokens
give it away) or from the batch's own tokens (`--replace unigram`: the replacement has the corpus's word
frequencies, so only the context tells: what ELECTRA's generator gives the discriminator once it has learned
the unigram distribution, after ~100 steps). AdamW, bf16 autocast, batch 16. Every 100 steps: the loss and the
precision / recall of "replaced" on that batch, next to the loss of always answering the replaced share (the prior),
and the spread of the last hidden states over positions (near 0: every position has become the same vector).
`--arch modernbert`: the same detection on the encoder of recipes/modernbert-mlm-movies.yaml (pre-LN, rotary) as a
one-label token classifier, to tell the architecture from the task; `--no-prior-bias`: the head's bias at 0.

    .venv/bin/python bench/probes/rtd_alone.py [--replace unigram|uniform] [--steps 600] [--lr 2e-4] [--arch modernbert]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replace", choices=["unigram", "uniform"], default="unigram")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--no-prior-bias", action="store_true",
                    help="leave the head's bias at 0 (transformers' init) instead of the replaced share's log-odds")
    ap.add_argument("--arch", choices=["electra", "modernbert"], default="electra")
    a = ap.parse_args()
    from transformers import (
        AutoTokenizer,
        ElectraConfig,
        ElectraForPreTraining,
        ModernBertConfig,
        ModernBertForTokenClassification,
    )

    from ftkit.recipe import load_recipe
    from ftkit.tasks.encoders.data import mlm_blocks
    from ftkit.tasks.encoders.electra_pair import prior_loss

    recipe = load_recipe(ROOT / "recipes" / "electra-movies.yaml")
    tok = AutoTokenizer.from_pretrained(recipe.tokenizer.path)
    train, _ = mlm_blocks(recipe, tok, lambda *_: None)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if a.arch == "electra":
        disc = ElectraForPreTraining(ElectraConfig(vocab_size=len(tok), hidden_dropout_prob=0.0,
                                                   attention_probs_dropout_prob=0.0, **recipe.model.config))
        bias = disc.discriminator_predictions.dense_prediction.bias
    else:
        shape = load_recipe(ROOT / "recipes" / "modernbert-mlm-movies.yaml").model.config
        disc = ModernBertForTokenClassification(ModernBertConfig(
            vocab_size=len(tok), num_labels=1, embedding_dropout=0.0, attention_dropout=0.0, mlp_dropout=0.0,
            classifier_dropout=0.0, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
            cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id, **{k: v for k, v in shape.items() if k != "classifier_pooling"}))
        bias = disc.classifier.bias
    if not a.no_prior_bias:  # what ftkit's electra task does: start at the prior, see tasks/encoders/electra_pair.py
        torch.nn.init.constant_(bias, math.log(0.15 / 0.85))
    opt = torch.optim.AdamW(disc.parameters(), lr=a.lr)
    t = time.perf_counter()
    for step in range(1, a.steps + 1):
        ids = torch.from_numpy(np.stack([train[i] for i in rng.integers(0, len(train), 16)]).astype(np.int64))
        chosen = torch.rand(ids.shape) < 0.15
        n = int(chosen.sum())
        pool = ids.flatten()
        new = pool[torch.randint(0, pool.numel(), (n,))] if a.replace == "unigram" else torch.randint(5, len(tok), (n,))
        corrupted = ids.clone()
        corrupted[chosen] = new
        replaced = (corrupted != ids).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = disc(input_ids=corrupted, output_hidden_states=True)
        logits = out.logits.float().reshape(replaced.shape)
        loss = F.binary_cross_entropy_with_logits(logits, replaced)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 100 == 0:
            said, truth = logits > 0, replaced.bool()
            tp = int((said & truth).sum())
            share = float(replaced.mean())
            prior = prior_loss(share)
            print(f"step {step}: loss {loss.item():.3f} (prior {prior:.3f}), replaced {share:.3f}, "
                  f"precision {tp / max(int(said.sum()), 1):.2f}, recall {tp / max(int(truth.sum()), 1):.2f}, "
                  f"spread {out.hidden_states[-1].float().std(1).mean().item():.3f}, "
                  f"{time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
