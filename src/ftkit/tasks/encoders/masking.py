"""BERT's dynamic masking, with all randomness from the caller's numpy Generators, one per sequence.

Written here rather than taken from transformers' DataCollatorForLanguageModeling because that
collator draws from its own stateful generator (seeded once), not from the engine's per-example
generators - and exact resume, identical evaluations and N processes equal to 1 need each
sequence's mask to be a pure function of (seed, epoch, example) (engine/batches.example_rngs).
Each sequence draws over its own length only, never over the batch's padding: its mask does not
depend on which sequences share its batch. Its whole-word mode also needs offset mappings, turns the 80/10/10 rule off and
compares every token with every other (T^2); and its random replacements include special tokens.

Rules: each candidate token (never a special token, never padding) is selected with probability
p; of the selected, 80% become the mask token, 10% a random non-special token, 10% stay as they
are (masking.mask_random_keep changes the shares); labels hold the original id at selected positions and -100 elsewhere.
Whole-word masking selects words instead (each with probability p, so the expected share of
selected tokens is still p) and applies 80/10/10 to each token of a selected word (as Google's
BERT code does). Where words start, per vocabulary entry:
- WordPiece: a piece without the continuation prefix `##` starts a word;
- byte-level BPE: a piece with the `Ġ` space marker starts a word (so a word is a whitespace-delimited
  span: punctuation glued to a word goes with it);
- Metaspace (unigram / SentencePiece): a piece with the `▁` marker starts a word;
and the first token after a special token (or at the start of a sequence) always starts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ftkit.engine.batches import example_rngs
from ftkit.errors import UserError

IGNORE = -100


@dataclass
class MaskingVocab:
    mask_id: int
    special: np.ndarray               # bool per vocabulary id: never selected
    random_ids: np.ndarray            # ids a selected token may be replaced with (all non-special ids)
    word_start: Optional[np.ndarray]  # bool per vocabulary id (whole-word masking), else None

    @classmethod
    def from_tokenizer(cls, tokenizer, whole_word: bool, where: str = "tokenizer") -> "MaskingVocab":
        if tokenizer.mask_token_id is None:
            raise UserError(f"{where}: the tokenizer has no mask token; a masked-LM objective needs one "
                            "(train a wordpiece or bpe tokenizer with task mlm or mlm+nsp: it gets [MASK] / <mask>)")
        size = len(tokenizer)
        special = np.zeros(size, dtype=bool)
        special[[i for i in tokenizer.all_special_ids if i is not None and i < size]] = True
        random_ids = np.flatnonzero(~special)
        starts = word_starts(tokenizer, where) if whole_word else None
        return cls(int(tokenizer.mask_token_id), special, random_ids, starts)


def word_starts(tokenizer, where: str = "tokenizer") -> np.ndarray:
    """Bool per vocabulary id: the token begins a word (see the module docstring)."""
    backend = tokenizer.backend_tokenizer
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    prefix = getattr(backend.model, "continuing_subword_prefix", None)
    pre = repr(backend.pre_tokenizer)
    if type(backend.model).__name__ == "WordPiece" and prefix:
        test = lambda p: not p.startswith(prefix)  # noqa: E731
    elif "ByteLevel" in pre:
        test = lambda p: p.startswith("\u0120")  # noqa: E731  ('Ġ', the byte-level space)
    elif "Metaspace" in pre:
        test = lambda p: p.startswith("\u2581")  # noqa: E731  ('▁')
    else:
        raise UserError(f"masking.whole_word: cannot tell where words start with this tokenizer ({type(backend.model).__name__}); "
                        "expected WordPiece (## pieces), byte-level BPE (Ġ) or a Metaspace tokenizer (▁)")
    return np.fromiter((p is not None and test(p) for p in pieces), dtype=bool, count=len(pieces))


def mask_tokens(ids: np.ndarray, vocab: MaskingVocab, probability: float, rng, whole_word: bool = False,
                shares: tuple[float, float, float] = (0.8, 0.1, 0.1),
                lengths: Optional[Sequence[int]] = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) for a (batch, length) array of token ids; `ids` is not modified. `rng`: one generator per row
    (or a Generator to split, see example_rngs); `lengths`: each row's tokens before its padding (default: all).
    `shares`: of the selected tokens, those that become the mask token, a random token, or stay (BERT's 80/10/10)."""
    inputs, labels = ids.copy(), np.full_like(ids, IGNORE)
    rows = example_rngs(rng, len(ids))
    for r, row_rng in enumerate(rows):
        n = ids.shape[1] if lengths is None else int(lengths[r])
        inputs[r, :n], labels[r, :n] = mask_sequence(ids[r, :n], vocab, probability, row_rng, whole_word, shares)
    return inputs, labels


def mask_sequence(ids: np.ndarray, vocab: MaskingVocab, probability: float, rng: np.random.Generator,
                  whole_word: bool = False, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[np.ndarray, np.ndarray]:
    """mask_tokens for one sequence (1-D), all draws from `rng`."""
    special = vocab.special[ids]
    if whole_word:
        after_special = np.ones_like(special)
        after_special[1:] = special[:-1]
        starts = (vocab.word_start[ids] | after_special) & ~special
        word = np.cumsum(starts)  # word number of each token
        chosen = rng.random(int(word.max(initial=0)) + 1) < probability
        selected = chosen[word] & ~special
    else:
        selected = (rng.random(len(ids)) < probability) & ~special
    labels = np.where(selected, ids, IGNORE)
    how = rng.random(len(ids))
    inputs = ids.copy()
    to_mask, to_random = shares[0], shares[0] + shares[1]
    inputs[selected & (how < to_mask)] = vocab.mask_id
    swap = selected & (how >= to_mask) & (how < to_random)
    inputs[swap] = vocab.random_ids[rng.integers(0, len(vocab.random_ids), size=int(swap.sum()))]
    return inputs, labels
