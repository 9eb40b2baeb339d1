"""Questions -> features: question + context windows of qa.max_length tokens overlapping by qa.doc_stride, with
the character offsets of every context token kept; the (first) answer mapped to start/end token positions through
those offsets, as run_qa's prepare_train_features does (a window that does not hold the whole answer points at
the [CLS] position, which is also where the null score of SQuAD v2 is read).

Counted and said: questions and the features they became, questions cut into several windows, and answers lost
to the windows (an answer no window holds whole: an answer longer than the stride that straddles every cut).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftkit.errors import UserError

CHUNK = 1000  # questions tokenized per call of the fast tokenizer


@dataclass
class Features:
    items: list[dict] = field(default_factory=list)  # model inputs, start/end positions, feature, ctx_start/ctx_end, cls_index
    example: list[int] = field(default_factory=list)  # the example (question) index of each feature
    offsets: list[np.ndarray] = field(default_factory=list)  # per feature: [tokens, 2] character offsets (context tokens)
    questions: int = 0
    windowed: int = 0  # questions cut into more than one window
    lost: int = 0  # answerable questions whose answer no window holds whole

    def describe(self) -> str:
        return (f"{len(self.items):,} features (question + context windows)"
                + (f"; {self.windowed:,} questions with a context cut into several windows" if self.windowed else "")
                + (f"; {self.lost:,} answers lost to the windows (no window holds them whole)"
                   if self.lost else "; no answer lost to the windows"))


def check_tokenizer(tokenizer, key: str):
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"{key}: {type(tokenizer).__name__} gives no character offsets (a slow tokenizer); question "
                        "answering maps answers through offsets and needs a fast tokenizer (a tokenizer.json)")
    return tokenizer


def _check_room(examples, tokenizer, max_length: int, stride: int) -> None:
    """Each window must leave the context more tokens than the stride (else it cannot advance): one line naming
    the first question that does not fit, before the tokenizer fails on it."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer([e.question.lstrip() for e in examples], add_special_tokens=False)["input_ids"]]
    for e, q in zip(examples, lengths):
        room = max_length - q - specials
        if room <= 0:
            raise UserError(f"{e.where}: the question is {q} tokens long; with the special tokens nothing of the context "
                            f"fits in qa.max_length {max_length}")
        if room <= stride and len(tokenizer(e.context, add_special_tokens=False)["input_ids"]) > room:
            raise UserError(f"{e.where}: the context is longer than one window, and a window of qa.max_length {max_length} "
                            f"leaves {room} tokens of context beside the question, not more than qa.doc_stride {stride}: "
                            "the windows cannot advance; lower qa.doc_stride or raise qa.max_length")


def _positions(offsets, ctx_start: int, ctx_end: int, start_char: int, end_char: int, cls: int) -> tuple[int, int]:
    """Token positions of the answer characters [start_char, end_char) in a window, or (cls, cls) when the window
    does not hold the whole answer (run_qa's prepare_train_features)."""
    if not (offsets[ctx_start][0] <= start_char and offsets[ctx_end][1] >= end_char):
        return cls, cls
    s = ctx_start
    while s <= ctx_end and offsets[s][0] <= start_char:
        s += 1
    e = ctx_end
    while e >= ctx_start and offsets[e][1] >= end_char:
        e -= 1
    return s - 1, e + 1


def encode(examples, tokenizer, max_length: int, stride: int, names: list[str]) -> Features:
    """Features of `examples` (data.Example), in example order; `names`: the tokenizer outputs the model takes."""
    question_first = tokenizer.padding_side == "right"  # run_qa: a left-padding model (XLNet) reads the context first
    ctx_id = 1 if question_first else 0
    out = Features(questions=len(examples))
    for lo in range(0, len(examples), CHUNK):
        chunk = examples[lo:lo + CHUNK]
        _check_room(chunk, tokenizer, max_length, stride)
        qs, cs = [e.question.lstrip() for e in chunk], [e.context for e in chunk]  # run_qa strips the questions' left
        enc = tokenizer(qs if question_first else cs, cs if question_first else qs,
                        truncation="only_second" if question_first else "only_first", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
        mapping = enc["overflow_to_sample_mapping"]
        found: dict[int, bool] = {}
        windows: dict[int, int] = {}
        for i, ids in enumerate(enc["input_ids"]):
            j = mapping[i]
            ex = chunk[j]
            seq = enc.sequence_ids(i)
            ctx = [t for t, s in enumerate(seq) if s == ctx_id]
            offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int32)
            cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
            start = end = cls
            if ex.answers:
                text, start_char = ex.answers[0]
                start, end = _positions(offsets, ctx[0], ctx[-1], start_char, start_char + len(text), cls)
                found[j] = found.get(j, False) or start != cls
            windows[j] = windows.get(j, 0) + 1
            item = {n: enc[n][i] for n in names}
            item.update(start_positions=start, end_positions=end, feature=len(out.items), ctx_start=ctx[0], ctx_end=ctx[-1],
                        cls_index=cls)
            out.items.append(item)
            out.example.append(lo + j)
            out.offsets.append(offsets)
        out.windowed += sum(n > 1 for n in windows.values())
        out.lost += sum(not v for v in found.values())
    return out
