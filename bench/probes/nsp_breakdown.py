"""Where next-sentence prediction on a corpus of several sources is right and wrong.

1. The mix (no model needed, `--mix-only`): for train and validation, each source's documents, documents with
   two or more sentences (the only ones pairs and random nexts come from) and sentence-pair chunks; the share of
   random nexts drawn from ANOTHER source (exact expectation: a random next is uniform over the other pair
   documents, whatever source A is from); and the accuracy a pure source detector would reach on these pairs
   (it calls a pair "next" exactly when A and B come from the same source: right on every true next and every
   other-source negative, wrong on every same-source one).
2. The model: accuracy on the held-out pairs `ftkit eval` scores, split by kind of pair (true next, random next
   from another source, random next from the same source) and by the source of A.

    .venv/bin/python bench/probes/nsp_breakdown.py [--recipe recipes/bert-mlm-nsp-mixed.yaml] [--model runs/bert-mlm-nsp-mixed]
                                           [--pairs N] [--mix-only]

A source is one entry of the recipe's data.train / data.validation list. The pairs, masks and batches are exactly
those of `ftkit eval --model MODEL --batch-size 32` (masking.eval_seed), so the overall figure is the one it prints.
"""

from __future__ import annotations

import argparse
import copy
import os
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def per_source(recipe, tok, split: str) -> list[tuple[str, object]]:
    """(name, PairItems) of each entry of data.train or data.validation, built alone (same tokenizer and settings)."""
    from ftkit.data import sources
    from ftkit.tasks.encoders.data import pair_items

    spec = recipe.data.train if split == "train" else recipe.data.validation
    out = []
    for entry in spec if isinstance(spec, list) else [spec]:
        one = recipe.model_copy(deep=True)
        one.data.train, one.data.validation, one.data.validation_split = [entry], None, 0.0
        items, _ = pair_items(one, tok, log=lambda *_: None)
        out.append(("/".join(sources.describe([entry]).split("/")[-2:]), items))  # e.g. imdb/test.jsonl
    return out


def mix(parts: list[tuple[str, object]], split: str) -> float:
    """Print the mix of one split; return the share of random nexts from another source."""
    total_pair_docs = sum(len(p.pair_docs) for _, p in parts)
    total_chunks = sum(p.n_pairs for _, p in parts)
    other = 0.0
    print(f"\n{split}:\n| source | documents | with >= 2 sentences | pair chunks | random next from another source |\n"
          "|---|---|---|---|---|")
    for name, p in parts:
        share = 1 - (len(p.pair_docs) - 1) / (total_pair_docs - 1)  # B uniform over the other pair documents
        other += share * p.n_pairs / total_chunks  # weighted by how often A comes from this source
        print(f"| {name} | {p.corpus.n_docs:,} | {len(p.pair_docs):,} | {p.n_pairs:,} | {100 * share:.1f} % |")
    print(f"{split}: random nexts from another source {100 * other:.1f} %; a pure source detector would score "
          f"{50 + 50 * other:.1f} % (half the pairs are true nexts)")
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/bert-mlm-nsp-mixed.yaml")
    ap.add_argument("--model", default="runs/bert-mlm-nsp-mixed")
    ap.add_argument("--pairs", type=int, default=None,
                    help="only the first N held-out pairs (default: all; they come in eval's shuffled order)")
    ap.add_argument("--mix-only", action="store_true", help="only the mix of sources (no model)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers import BertForPreTraining

    from ftkit import registry
    from ftkit.data.tokenizer_source import obtain_tokenizer
    from ftkit.engine.batches import eval_batches
    from ftkit.recipe import load_recipe
    from ftkit.tasks.encoders.data import pair_items
    from ftkit.tasks.encoders.nsp import MaskedLMWithNSP

    recipe = load_recipe(args.recipe)
    if not isinstance(recipe.data.validation, list):
        raise SystemExit(f"{args.recipe}: data.validation must be a list of sources (one entry per source)")
    tok = obtain_tokenizer(recipe, registry.entry(recipe.task), lambda *_: None)
    mix(per_source(recipe, tok, "train"), "train")
    parts = per_source(recipe, tok, "validation")
    mix(parts, "validation")
    if args.mix_only:
        return

    names = [n for n, _ in parts]
    bounds = np.cumsum([p.corpus.n_docs for _, p in parts])
    source_of = lambda doc: int(np.searchsorted(bounds, doc, side="right"))  # noqa: E731
    _, val = pair_items(recipe, tok, log=lambda *_: None, want_train=False)
    assert val.corpus.n_docs == bounds[-1], "the joined validation corpus is not the sources one after another"

    # Which document each random next comes from: replay pair()'s draws (the split point, then other_document)
    # on a copy of the collate's generator, in the order pair() makes them.
    drawn: list[tuple[int, int]] = []  # (source of A, source of B) per pair, in collate order
    real_pair = val.pair

    def pair(item, random_next, rng):
        b_doc = item.doc
        if random_next:
            probe = copy.deepcopy(rng)
            if item.end - item.start >= 2:
                probe.integers(1, item.end - item.start)
            b_doc = val.other_document(item.doc, probe)
        drawn.append((source_of(item.doc), source_of(b_doc)))
        return real_pair(item, random_next, rng)

    val.pair = pair
    task = MaskedLMWithNSP(tok, recipe.masking)
    model = BertForPreTraining.from_pretrained(args.model).eval()
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    detector = [0, 0]
    for batch in eval_batches(val, 32, task.eval_collate, recipe.masking.eval_seed):
        labels = batch["next_sentence_label"]
        with torch.inference_mode():
            pred = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"]).seq_relationship_logits.argmax(-1)
        keep = labels >= 0
        pairs, drawn[:] = drawn[:], []
        for p, y, (sa, sb) in zip(pred[keep].tolist(), labels[keep].tolist(), pairs):
            kind = "true next" if y == 0 else ("random, same source" if sa == sb else "random, other source")
            for key in ((kind, names[sa]), (kind, "all"), ("all", "all")):
                counts[key][0] += int(p == y)
                counts[key][1] += 1
            detector[0] += int((sa != sb) == bool(y))
            detector[1] += 1
        if args.pairs and detector[1] >= args.pairs:
            break
    print("\n| pair kind | A from | pairs | accuracy |\n|---|---|---|---|")
    order = lambda kv: (kv[0][0] == "all", kv[0][0], kv[0][1] == "all", kv[0][1])  # noqa: E731
    for (kind, src), (right, n) in sorted(counts.items(), key=order):
        print(f"| {kind} | {src} | {n:,} | {100 * right / n:.1f} % |")
    right, n = counts[("all", "all")]
    print(f"nsp accuracy {100 * right / n:.1f} % on {n:,} held-out pairs; a pure source detector would score "
          f"{100 * detector[0] / detector[1]:.1f} % on the same pairs")


if __name__ == "__main__":
    main()
