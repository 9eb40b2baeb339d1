"""Token ids of source -> target pairs: the source (with seq2seq.source_prefix) as the encoder's input, the target
as the labels; both capped (seq2seq.max_source_length / max_target_length), over-long pairs counted.

A cut keeps the sequence's closing special token (</s>, [SEP]): a target cut without its end token would teach
the model never to stop. A target that the tokenizer opens with the decoder's start token (BERT's [CLS] for a
warm-started EncoderDecoderModel) loses it: the decoder is fed that token before the labels, so a label equal to
it would teach the model to write it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHUNK = 2048  # texts per tokenizer call


@dataclass
class Encoded:
    items: list[dict] = field(default_factory=list)
    truncated: int = 0  # pairs cut to the length caps (either side)
    skipped: int = 0  # pairs left out for their length (seq2seq.too_long: skip)

    def describe(self, name: str) -> str:
        extra = [f"{self.truncated:,} truncated"] if self.truncated else []
        extra += [f"{self.skipped:,} skipped as too long"] if self.skipped else []
        return f"{name}: {len(self.items):,} pairs" + (f" ({', '.join(extra)})" if extra else "")


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), CHUNK):
        out.extend(tokenizer(texts[i:i + CHUNK], add_special_tokens=True)["input_ids"])
    return out


def _cut(ids: list[int], cap: int, specials: set) -> list[int]:
    if len(ids) <= cap:
        return ids
    return ids[:cap - 1] + [ids[-1]] if ids[-1] in specials else ids[:cap]


def encode(pairs, tokenizer, s2s, decoder_start: int, train: bool) -> Encoded:
    """Items {input_ids, labels, index}; `train`: seq2seq.too_long applies (evaluation always truncates)."""
    sources = _ids(tokenizer, [s2s.source_prefix + s for s in pairs.sources])
    targets = _ids(tokenizer, list(pairs.targets))
    specials = set(tokenizer.all_special_ids)
    out = Encoded()
    for i, (src, tgt) in enumerate(zip(sources, targets)):
        if tgt and tgt[0] == decoder_start and len(tgt) > 1:
            tgt = tgt[1:]
        if len(src) > s2s.max_source_length or len(tgt) > s2s.max_target_length:
            if train and s2s.too_long == "skip":
                out.skipped += 1
                continue
            out.truncated += 1
            src, tgt = _cut(src, s2s.max_source_length, specials), _cut(tgt, s2s.max_target_length, specials)
        out.items.append({"input_ids": np.asarray(src, dtype=np.int32), "labels": np.asarray(tgt, dtype=np.int32),
                          "index": i})
    return out
