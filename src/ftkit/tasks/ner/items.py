"""Tagged sentences -> model inputs: sub-token alignment and windows, so that every word is scored.

Alignment (as transformers' run_ner): a fast tokenizer splits the words, `word_ids()` maps pieces
to words; the first piece of a word carries its tag, the other pieces are ignored (-100) unless
`ner.label_all_tokens` (they then carry the word's tag with B- turned into I-: more training
signal, but a scorer that counts pieces would inflate entity scores, transformers #14043 — ftkit
always scores words, by their first piece).
Sentences longer than the length cap are not truncated: they are cut into consecutive windows of
whole words that fit, each word in exactly one window, and its prediction is merged back by its
(sentence, word) key. Each labelled position carries that key in `word_key` (-1 elsewhere).
"""

from __future__ import annotations

import json

from ftkit.errors import UserError

WORDS_PER_SENTENCE = 1_000_000  # word_key = sentence * this + word


def check_tokenizer(tokenizer, key: str):
    """A fast tokenizer (word_ids); byte-level BPE needs add_prefix_space to tokenize words as in running text."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"{key}: {type(tokenizer).__name__} is a slow tokenizer; token classification needs a fast "
                        f"one (tokenizer.json) for word_ids()")
    backend = tokenizer.backend_tokenizer
    state = json.loads(backend.to_str())
    if _prefix_space_off(state.get("pre_tokenizer")):
        # Byte-level BPE marks a word start by its leading space: a word split out of a sentence must be
        # encoded as " word", as in running text. `from_pretrained(add_prefix_space=True)` does not reach
        # the backend of every tokenizer class in transformers 5, so the setting is made on the backend.
        _prefix_space_on(state["pre_tokenizer"])
        from tokenizers import Tokenizer

        tokenizer._tokenizer = Tokenizer.from_str(json.dumps(state))
        tokenizer.add_prefix_space = True
    return tokenizer


def _prefix_space_off(node) -> bool:
    if isinstance(node, dict):
        if node.get("type") == "ByteLevel" and node.get("add_prefix_space") is False:
            return True
        return any(_prefix_space_off(v) for v in node.values())
    return isinstance(node, list) and any(_prefix_space_off(v) for v in node)


def _prefix_space_on(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "ByteLevel":
            node["add_prefix_space"] = True
        for v in node.values():
            _prefix_space_on(v)
    elif isinstance(node, list):
        for v in node:
            _prefix_space_on(v)


def windows(piece_counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive word ranges [a, b) whose pieces fit `budget` (a longer single word gets a window of its own)."""
    out, start, used = [], 0, 0
    for i, c in enumerate(piece_counts):
        if i > start and used + c > budget:
            out.append((start, i))
            start, used = i, 0
        used += c
    out.append((start, len(piece_counts)))
    return out


def _item(enc, word_ids: list, tags: list[str], first_word: int, sentence: int, label2id: dict[str, int],
          input_names: list[str], label_all_tokens: bool) -> dict:
    """One model input: labels on first pieces (others -100, or I- with label_all_tokens) and their word keys."""
    labels, keys, prev = [], [], None
    for w in word_ids:
        if w is None:
            labels.append(-100), keys.append(-1)
        elif w != prev:
            labels.append(label2id[tags[first_word + w]]), keys.append(sentence * WORDS_PER_SENTENCE + first_word + w)
        else:
            tag = tags[first_word + w]
            inner = label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag]
            labels.append(inner if label_all_tokens else -100), keys.append(-1)
        prev = w
    item = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc and (k in input_names or k == "input_ids")}
    item.update(labels=labels, word_key=keys)
    return item


def encode(tagged, tokenizer, cap: int, label2id: dict[str, int], input_names: list[str],
           label_all_tokens: bool = False) -> tuple[list[dict], int]:
    """(items, number of sentences split into windows). All sentences are tokenized in one batched call;
    only those longer than `cap` pieces are tokenized again, window by window."""
    type_ids = "token_type_ids" in input_names
    full = tokenizer(tagged.tokens, is_split_into_words=True, return_token_type_ids=type_ids)
    budget = cap - tokenizer.num_special_tokens_to_add(pair=False)
    items, split = [], 0
    for s, (words, tags) in enumerate(zip(tagged.tokens, tagged.tags)):
        word_ids = full.word_ids(s)
        if len(word_ids) <= cap:
            enc = {k: v[s] for k, v in full.items()}
            items.append(_item(enc, word_ids, tags, 0, s, label2id, input_names, label_all_tokens))
            continue
        counts = [0] * len(words)
        for w in word_ids:
            if w is not None:
                counts[w] += 1
        split += 1
        for a, b in windows([max(1, c) for c in counts], budget):
            enc = tokenizer(words[a:b], is_split_into_words=True, truncation=True, max_length=cap,
                            return_token_type_ids=type_ids)
            items.append(_item(enc, enc.word_ids(), tags, a, s, label2id, input_names, label_all_tokens))
    return items, split
