"""Next-sentence prediction trained alone (no masked LM) on bert-mlm-nsp-movies' pairs.

    .venv/bin/python bench/probes/nsp_alone.py [--steps 400] [--lr 5e-4] [--fixed] [--recipe FILE]

Batches of 16 pairs drawn as in training (ftkit's collate: half of each batch's B from another review);
prints the mean NSP loss and accuracy of every 20 steps. `--fixed` trains on one batch only, the check that
the head and labels can be fit at all. The default recipe starts from random weights and needs its
tokenizer (`ftkit tokenize -r recipes/bert-mlm-nsp-movies.yaml`); `--recipe bench/recipes/nsp-minilm-ceiling.yaml`
starts from the pre-trained all-MiniLM-L6-v2 instead.
Measured 2026-11-22: --fixed averages loss 0.0066 over steps 21-40 (accuracy 1.0); on fresh batches the loss stays at ln 2
(0.693) for 400 steps at lr 5e-4 from random weights, and from MiniLM (lr 5e-5, 200 steps) the 20-step
windows stay between 49 % and 58 % accuracy.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--fixed", action="store_true")
    ap.add_argument("--recipe", default="recipes/bert-mlm-nsp-movies.yaml",
                    help="whose model, tokenizer and pairs (bench/recipes/nsp-minilm-ceiling.yaml: the pre-trained MiniLM)")
    args = ap.parse_args()
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ftkit import registry
    from ftkit.data.tokenizer_source import obtain_tokenizer
    from ftkit.models.build import build_model
    from ftkit.recipe import load_recipe
    from ftkit.tasks.encoders.nsp import MaskedLMWithNSP
    from ftkit.tasks.encoders.nsp import pairs as pair_items
    from ftkit.tasks.encoders.pairs import PAIR

    torch.manual_seed(0)
    recipe = load_recipe(args.recipe)
    tokenizer = obtain_tokenizer(recipe, registry.entry(recipe.task), print)
    task = MaskedLMWithNSP(tokenizer, recipe.masking)
    train, _ = pair_items(recipe, tokenizer, print)
    model = build_model(recipe, tokenizer, registry.entry(recipe.task))
    pairs = [it for it in (train[i] for i in range(len(train))) if it.kind == PAIR]
    rng = np.random.default_rng(0)
    fixed = task.collate(pairs[:16], np.random.default_rng(1))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    window = []
    for step in range(args.steps):
        batch = fixed if args.fixed else task.collate([pairs[i] for i in rng.integers(len(pairs), size=16)], rng)
        out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
        loss = F.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"])
        acc = (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).float().mean().item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append((loss.item(), acc))
        if (step + 1) % 20 == 0:
            losses, accs = zip(*window)
            print(f"steps {step - 18}-{step + 1}  nsp loss {np.mean(losses):.4f}  accuracy {np.mean(accs):.3f}", flush=True)
            window = []


if __name__ == "__main__":
    main()
