"""Conversations -> token ids and a training mask, rendered by the chat template exactly as inference renders them.

Why by hand: `apply_chat_template(return_assistant_tokens_mask=True)` needs `{% generation %}` markers,
which most templates (SmolLM2's included) lack. The assistant spans are found by rendering prefixes:
the text before assistant turn i is `template(messages[:i], add_generation_prompt=True)` -- the very prompt
inference sends -- and the turn ends where `template(messages[:i+1])` ends. Each piece is tokenized on its
own (no special tokens added: the template writes BOS where it wants one, so there is never a second), so
the prompt tokens of training are those of inference. A reply trains up to and including the end-of-turn
(eos) token that closes it, so the model learns to stop even where pad == eos; what follows it (a newline)
does not train. Checked, never assumed: a template whose renders are not prefixes of each other, a
double BOS, and an example with nothing to train are errors naming the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftkit.errors import UserError

# For base models without a template (sft.chat_template: chatml).
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
NAMED_TEMPLATES = {"chatml": CHATML}


def set_template(tokenizer, named, key: str = "sft.chat_template"):
    """The tokenizer with the template the recipe names (a name or a Jinja string), or its own; none: an error."""
    if named:
        tokenizer.chat_template = NAMED_TEMPLATES.get(named, named)
        if named == "chatml":  # the template's end-of-turn marker must be one token the model can learn to stop at
            missing = [t for t in ("<|im_start|>", "<|im_end|>") if t not in tokenizer.get_vocab()]
            if missing:
                tokenizer.add_special_tokens({"additional_special_tokens": missing})
            tokenizer.eos_token = "<|im_end|>"
    if not tokenizer.chat_template:
        raise UserError(f"{key}: the tokenizer has no chat template; name one (chatml, or a Jinja template string)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # batches need a pad id; pad positions never train (masked by position)
    return tokenizer


def _render(tokenizer, messages, generation_prompt: bool, where: str) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja2 raises TemplateError (or what the template's raise_exception says)
        raise UserError(f"{where}: the chat template refused this conversation: {str(e).splitlines()[0][:200]}") from None


def pieces(tokenizer, messages: list[dict], train_on: str, where: str) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, trained) pieces, in order; their concatenation is the full render."""
    full = _render(tokenizer, messages, False, where)
    if train_on == "all":
        return [(full, True)]
    out: list[tuple[str, bool]] = []
    pos = 0
    eot = tokenizer.eos_token or ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        if i == 0:
            raise UserError(f"{where}: the conversation starts with an assistant turn; expected a prompt before it")
        before = _render(tokenizer, messages[:i], True, where)
        through = _render(tokenizer, messages[:i + 1], False, where)
        if not (full.startswith(through) and through.startswith(before) and len(before) >= pos):
            raise UserError(f"{where}: the chat template does not render conversations as prefixes of each other "
                            f"(turn {i + 1}); its assistant turns cannot be located")
        reply = through[len(before):]
        cut = reply.rfind(eot) if eot else -1
        cut = len(reply) if cut < 0 else cut + len(eot)  # up to and including the end-of-turn token
        out += [(full[pos:len(before)], False), (reply[:cut], True), (reply[cut:], False)]
        pos = len(through)
    out.append((full[pos:], False))
    return [(t, trained) for t, trained in out if t]


@dataclass
class Encoded:
    items: list[dict]  # {"input_ids": int32 array, "train": bool array}
    where: list[str]
    skipped: int  # longer than block_size
    max_length: int


def _token_masks(tokenizer, all_pieces: list) -> list[tuple[list[int], list[bool]]]:
    """Each rendered conversation tokenized whole (as apply_chat_template(tokenize=True) does, so tokenizers that
    mark word starts, e.g. SentencePiece's leading "▁", see the text as inference does), with a token trained
    when it starts inside a trained piece (character offsets). Slow tokenizers (no offsets): piece by piece."""
    texts = ["".join(t for t, _ in p) for p in all_pieces]
    if not texts:
        return []
    if not getattr(tokenizer, "is_fast", False):
        out = []
        for p in all_pieces:
            ids, mask = [], []
            for text, trained in p:
                piece = tokenizer(text, add_special_tokens=False)["input_ids"]
                ids += piece
                mask += [trained] * len(piece)
            out.append((ids, mask))
        return out
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for p, ids, offsets in zip(all_pieces, enc["input_ids"], enc["offset_mapping"]):
        spans, at = [], 0
        for text, trained in p:
            if trained:
                spans.append((at, at + len(text)))
            at += len(text)
        mask = [any(a <= start < b for a, b in spans) for start, _ in offsets]
        out.append((list(ids), mask))
    return out


def encode(tokenizer, convs, train_on: str, block_size: int) -> Encoded:
    """Token ids and training masks of every conversation; examples longer than block_size are skipped and counted
    (cutting them would train on replies whose question was cut away)."""
    all_pieces = [pieces(tokenizer, msgs, train_on, w) for msgs, w in zip(convs.messages, convs.where)]
    items, where, skipped, longest = [], [], 0, 0
    bos = tokenizer.bos_token_id
    for (toks, mask), w in zip(_token_masks(tokenizer, all_pieces), convs.where):
        if bos is not None and len(toks) > 1 and toks[0] == bos and toks[1] == bos:
            raise UserError(f"{w}: the rendered example starts with two BOS tokens")
        train = np.asarray(mask, dtype=bool)
        train[:1] = False  # the first token is never a target (nothing precedes it)
        if not train.any():
            raise UserError(f"{w}: no token of this example trains (sft.train_on {train_on}): its assistant turn renders "
                            f"to nothing; expected a reply to learn")
        longest = max(longest, len(toks))
        if len(toks) > block_size:
            skipped += 1
            continue
        items.append({"input_ids": np.asarray(toks, dtype=np.int32), "train": train})
        where.append(w)
    return Encoded(items, where, skipped, longest)


def end_of_turn_ids(tokenizer) -> list[int]:
    """The special token the chat template writes right after an assistant reply (ChatML's <|im_end|>, Llama 3's
    <|eot_id|>, Gemma's <end_of_turn>): where a reply ends, whatever the tokenizer calls its eos. Found by rendering
    a short exchange; [] when the template writes no special token there (or refuses the exchange)."""
    mark = "ftkit-reply-end"
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": mark}],
                                             tokenize=False)
    except Exception:  # a template with its own rules (jinja2 raises TemplateError or the template's raise_exception)
        return []
    if not isinstance(text, str) or mark not in text:
        return []
    after = tokenizer(text[text.index(mark) + len(mark):], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return [after[0]] if after and after[0] in special else []


def stop_ids(tokenizer, generation_config=None) -> list[int]:
    """Tokens that end a reply: the chat template's end-of-turn token, the tokenizer's eos, the model's generation
    config's (e.g. Gemma's <end_of_turn>), and ChatML's <|im_end|> where the vocabulary has it."""
    ids = {tokenizer.eos_token_id, *end_of_turn_ids(tokenizer)}
    gen = getattr(generation_config, "eos_token_id", None)
    ids |= set(gen) if isinstance(gen, (list, tuple)) else {gen}
    if "<|im_end|>" in tokenizer.get_vocab():
        ids.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return sorted(i for i in ids if isinstance(i, int))


def prompt_ids(tokenizer, messages: list[dict], where: str) -> list[int]:
    """What inference sends for a reply to `messages`: the template with its generation prompt, tokenized as
    apply_chat_template(tokenize=True) does (no special tokens added)."""
    return tokenizer(_render(tokenizer, messages, True, where), add_special_tokens=False)["input_ids"]


def pack(items: list[dict], block_size: int, order: np.ndarray) -> list[list[dict]]:
    """Examples packed into blocks of at most block_size tokens, best-fit decreasing (longest first, each into the
    fullest block it still fits: few, nearly full blocks); none is ever split. `order` breaks ties between equal
    lengths (a seeded permutation), so the packing is reproducible; the engine shuffles the blocks per epoch."""
    from collections import defaultdict

    rank = {int(i): r for r, i in enumerate(order)}
    blocks: list[list[int]] = []
    by_room: dict[int, list[int]] = defaultdict(list)  # free tokens -> blocks with that much room
    for i in sorted(rank, key=lambda i: (-len(items[i]["input_ids"]), rank[i])):
        n = len(items[i]["input_ids"])
        room = next((r for r in range(n, block_size + 1) if by_room[r]), None)
        if room is None:
            blocks.append([i])
            b, left = len(blocks) - 1, block_size - n
        else:
            b = by_room[room].pop()
            blocks[b].append(i)
            left = room - n
        by_room[left].append(b)
    return [[items[i] for i in block] for block in blocks]
