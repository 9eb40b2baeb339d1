"""A byte-level BPE tokenizer (GPT-2 style: SmolLM2, GPT-2) as the GGUF tokenizer metadata llama.cpp reads.

The `gguf` package writes the fields and reads merges, special tokens and the chat template from a saved
tokenizer (`gguf.SpecialVocab`); what it lacks, written here:
- the token list and token types of a *fast* tokenizer, padded to the model's embedding rows (llama.cpp's converter
  does this in its own script, not in the package): added special tokens are CONTROL, other added tokens
  USER_DEFINED (llama.cpp matches both whole in text), ids without a token UNUSED `[PADi]`;
- `tokenizer.ggml.pre`, the name of the regex llama.cpp splits text with before BPE. llama.cpp's converter finds it
  from a hash of a test text's tokens; here it is read from the tokenizer's own pre-tokenizer, and one llama.cpp
  does not name is refused: a wrong split silently changes the tokens (the "gibberish after export" reports);
- whether encoding adds BOS / EOS, found by encoding a text (what the tokenizer does, however it says it).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from typing import Optional

from ftkit.data.chat_tokens import end_of_turn_ids
from ftkit.errors import UserError


@dataclass
class GGUFVocab:
    tokens: list[str]
    types: list[int]
    pre: str
    special: object  # gguf.SpecialVocab: merges, special token ids, add_bos / add_eos, chat template

    def add_to(self, writer) -> None:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.types)
        self.special.add_to_gguf(writer, quiet=True)


def _byte_level(step: dict, use_regex: bool) -> bool:
    return step.get("type") == "ByteLevel" and bool(step.get("use_regex", True)) == use_regex \
        and not step.get("add_prefix_space", False)


def pre_name(pre: Optional[dict]) -> Optional[str]:
    """llama.cpp's name for the way this pre-tokenizer splits text, or None when llama.cpp has no such split.
    gpt2: GPT-2's regex (ByteLevel alone); smollm: single digits first, then GPT-2's regex (SmolLM / SmolLM2)."""
    if not pre:
        return None
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if len(steps) == 1 and _byte_level(steps[0], True):
        return "gpt2"
    if len(steps) == 2 and steps[0].get("type") == "Digits" and steps[0].get("individual_digits") \
            and _byte_level(steps[1], True):
        return "smollm"
    return None


def _describe(pre: Optional[dict]) -> str:
    if not pre:
        return "none"
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    return " + ".join(s.get("type", "?") for s in steps)


def check(tokenizer, key: str = "--model") -> dict:
    """The tokenizer's tokenizer.json as a dict when llama.cpp can tokenize exactly as it does; else a one-line error."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserError(f"{key}: its tokenizer ({type(tokenizer).__name__}) is not a fast (tokenizer.json) tokenizer; "
                        f"GGUF export writes byte-level BPE vocabularies (GPT-2 style, as SmolLM2's)")
    spec = json.loads(backend.to_str())
    model, decoder = spec.get("model") or {}, spec.get("decoder") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder.get("type") != "ByteLevel":
        what = "byte-fallback BPE (SentencePiece style)" if model.get("byte_fallback") else f"{model.get('type')} model"
        raise UserError(f"{key}: its tokenizer is a {what}; GGUF export writes byte-level BPE vocabularies "
                        f"(GPT-2 style, as SmolLM2's) only")
    if spec.get("normalizer"):
        raise UserError(f"{key}: its tokenizer normalizes text ({spec['normalizer'].get('type')}) before BPE, which "
                        f"llama.cpp's byte-level BPE does not; GGUF export refuses it rather than change the tokens")
    if pre_name(spec.get("pre_tokenizer")) is None:
        raise UserError(f"{key}: its tokenizer splits text with a pre-tokenizer llama.cpp has no name for "
                        f"({_describe(spec.get('pre_tokenizer'))}); supported: ByteLevel (gpt2), Digits + ByteLevel (smollm)")
    return spec


def _adds(tokenizer) -> tuple[bool, bool]:
    """(adds BOS, adds EOS) when encoding a text with special tokens."""
    plain = tokenizer("a b", add_special_tokens=False)["input_ids"]
    full = tokenizer("a b")["input_ids"]
    bos = len(full) > len(plain) and full[0] == tokenizer.bos_token_id and full[1:len(plain) + 1] == plain
    eos = len(full) > len(plain) and full[-1] == tokenizer.eos_token_id and full[-len(plain) - 1:-1] == plain
    return bool(bos), bool(eos)


def from_tokenizer(tokenizer, n_vocab: int, key: str = "--model") -> GGUFVocab:
    """The GGUF vocabulary of `tokenizer` for a model with `n_vocab` embedding rows."""
    import gguf

    spec = check(tokenizer, key)
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= n_vocab:
        raise UserError(f"{key}: its tokenizer has token id {max(vocab.values())} but the model only {n_vocab} "
                        f"embedding rows; the tokenizer does not belong to this model")
    by_id = {i: t for t, i in vocab.items()}
    added = tokenizer.added_tokens_decoder  # {id: AddedToken}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL if i not in added else
                         gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
    with tempfile.TemporaryDirectory() as tmp:  # SpecialVocab reads a saved tokenizer (merges in either format)
        tokenizer.save_pretrained(tmp)
        special = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        raise UserError(f"{key}: its tokenizer has no BPE merges; GGUF export needs them")
    # the ids as the tokenizer object has them (SpecialVocab guesses from the saved files)
    ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "unk": tokenizer.unk_token_id,
           "pad": tokenizer.pad_token_id}
    turn_end = [i for i in end_of_turn_ids(tokenizer) if i != tokenizer.eos_token_id]
    if turn_end:  # e.g. <|im_end|> where eos is <|endoftext|>: llama.cpp stops on it too
        ids["eot"] = turn_end[0]
    special.special_token_ids = {k: v for k, v in ids.items() if isinstance(v, int)}
    add_bos, add_eos = _adds(tokenizer)
    special.add_special_token = {"bos": add_bos, "eos": add_eos}
    template = tokenizer.chat_template
    special.chat_template = template.get("default") if isinstance(template, dict) else template
    return GGUFVocab(tokens, [int(t) for t in types], pre_name(spec.get("pre_tokenizer")), special)
