"""Top-5 of plain transformers' fill-mask pipeline on a pre-trained masked LM (the README's probe table).

    .venv/bin/python bench/probes/fill_mask_probes.py runs/bert-mlm-nsp-movies [--probe "this movie was [MASK] ."]

Nothing of ftkit is imported: this is what a user gets with `pipeline("fill-mask", model=DIR)`. The mask
token is the model's own ([MASK] for BERT, <mask> for RoBERTa): write [MASK] in probes either way.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

PROBES = ["this movie was [MASK] .", "the acting was [MASK] and the plot was boring .",
          "i [MASK] this film .", "one of the [MASK] movies i have ever seen .", "the [MASK] was great ."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--probe", action="append", help="a sentence with [MASK] (repeatable; default: five movie probes)")
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()
    from transformers import pipeline

    fill = pipeline("fill-mask", model=args.model)
    mask = fill.tokenizer.mask_token
    for probe in args.probe or PROBES:
        text = probe.replace("[MASK]", mask)
        top = fill(text, top_k=args.top_k)
        print(f"{probe:50s} " + "  ".join(f"{t['token_str'].strip()} ({t['score']:.2f})" for t in top))


if __name__ == "__main__":
    main()
