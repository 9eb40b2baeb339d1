"""Train tokenizers with the `tokenizers` library and load them as transformers tokenizers.

Four kinds: byte-level BPE (GPT-2/RoBERTa style), WordPiece (BERT style), Unigram
(SentencePiece style, Metaspace) and character level. The special tokens depend on the
task: encoder tasks (mlm, mlm+nsp, cls) get [CLS]/[SEP]/[MASK]-style tokens and a pair
template that sets token_type_ids; causal LMs get an end-of-text token and a separate
pad token (pad == eos would teach the model never to stop); encoder-decoders T5's <pad> </s> <unk>,
</s> after each text, and tokenizer.extra_ids sentinels <extra_id_N> on top of the vocabulary.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ftkit.errors import UserError
from ftkit.paths import is_gguf, is_local, locate_gguf, missing, not_found_note, resolve_package_path
from ftkit.recipe.schema import Recipe, TokenizerSection
from ftkit.task_entry import TaskEntry


@dataclass(frozen=True)
class Specials:
    """Special tokens of a tokenizer style; `None` means the style has no such token."""
    bos: Optional[str]
    eos: Optional[str]
    unk: Optional[str]
    pad: str
    cls: Optional[str] = None
    sep: Optional[str] = None
    mask: Optional[str] = None

    def ordered(self) -> list[str]:
        seen: list[str] = []
        for t in (self.pad, self.unk, self.cls, self.sep, self.mask, self.bos, self.eos):
            if t is not None and t not in seen:
                seen.append(t)
        return seen


BERT = Specials(bos=None, eos=None, unk="[UNK]", pad="[PAD]", cls="[CLS]", sep="[SEP]", mask="[MASK]")
ROBERTA = Specials(bos="<s>", eos="</s>", unk="<unk>", pad="<pad>", cls="<s>", sep="</s>", mask="<mask>")
GPT = Specials(bos="<|endoftext|>", eos="<|endoftext|>", unk="<unk>", pad="<pad>")
# encoder-decoders (T5's): texts end with </s>, decoding starts from <pad>; no bos, no pair template of segments
T5 = Specials(bos=None, eos="</s>", unk="<unk>", pad="<pad>")


def sentinel(i: int) -> str:
    """T5's i-th sentinel token (span corruption replaces the i-th dropped span of a text by it)."""
    return f"<extra_id_{i}>"


def specials_for(kind: str, entry: TaskEntry) -> Specials:
    """wordpiece: BERT's tokens; otherwise GPT's for a decoder, T5's for an encoder-decoder (the task's entry says
    which it is), RoBERTa's else."""
    if kind == "wordpiece":
        return BERT
    return GPT if entry.decoder_only else T5 if entry.encoder_decoder else ROBERTA


def build_tokenizer(kind: str, cfg: TokenizerSection, specials: Specials, texts: Iterable[list[str]]):
    """Train a `tokenizers.Tokenizer` of `kind` on batches of texts."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    sp = specials.ordered()
    if kind == "char":
        counts: Counter = Counter()
        for batch in texts:
            for t in batch:
                counts.update(t)
        if not counts:
            raise UserError("tokenizer: the training corpus is empty")
        chars = [c for c, n in counts.most_common() if n >= 1][: max(1, cfg.vocab_size - len(sp))]
        vocab = {tok: i for i, tok in enumerate(sp + sorted(chars))}
        # BPE with no merges = one token per character, unknown characters -> unk.
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=specials.unk))
        tok.decoder = decoders.Fuse()
        if cfg.lowercase:
            tok.normalizer = normalizers.Lowercase()
        _add_sentinels(tok, cfg.extra_ids)
        _add_template(tok, specials)
        return tok
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        if cfg.lowercase:
            tok.normalizer = normalizers.Lowercase()
        # As roberta-base: <mask> (and a literal <unk>, as in WikiText) takes the space before it, so "in <mask>"
        # is [Ġin, <mask>] and the mask stands for a whole 'Ġword' - not [Ġin, Ġ, <mask>] with a stray space token.
        eat_space = {specials.mask, specials.unk} if specials.mask else set()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                      special_tokens=[AddedToken(t, lstrip=t in eat_space, special=True, normalized=False)
                                                      for t in sp],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=specials.unk))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=cfg.lowercase, lowercase=cfg.lowercase)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                            special_tokens=sp, continuing_subword_prefix="##")
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        norm = [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
        tok.normalizer = normalizers.Sequence(norm + ([normalizers.Lowercase()] if cfg.lowercase else []))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=cfg.vocab_size, special_tokens=sp, unk_token=specials.unk)
    else:  # pragma: no cover - the schema only admits the kinds above
        raise UserError(f"tokenizer.kind: unknown kind '{kind}'")
    tok.train_from_iterator(texts, trainer=trainer)
    if tok.get_vocab_size() <= len(sp):
        raise UserError("tokenizer: the training corpus is empty")
    tok = _canonical_ids(tok, kind)
    _add_sentinels(tok, cfg.extra_ids)
    _add_template(tok, specials)
    return tok


def _add_sentinels(tok, n: int) -> None:
    """T5's sentinels as special tokens after the trained vocabulary, <extra_id_0> last (highest id) as in T5's
    tokenizers: special, so no text ever splits them; each takes the space before it (as <mask> does), so "in a <extra_id_0>
    shirt" reads [in, a, <extra_id_0>, shirt] as in training, where a sentinel stands for whole dropped pieces."""
    from tokenizers import AddedToken

    if n:
        tok.add_special_tokens([AddedToken(sentinel(i), special=True, normalized=False, lstrip=True) for i in reversed(range(n))])


def _canonical_ids(tok, kind: str):
    """The same corpus should give the same tokenizer. tokenizers' WordPiece trainer numbers its '##' pieces in
    hash-map order, new in every process (huggingface/tokenizers#1794): two trainings of movies-wordpiece gave
    the same 12,000 pieces with 417 of them under other ids, so a model pre-trained on each started from other
    embeddings. A WordPiece vocabulary is a set (greedy longest match), so it is numbered in sorted order after
    the special tokens, which keep their ids. What this cannot undo: where the '##' order broke a tie between
    equally frequent merges, a few pieces differ (seen on a 1,000-piece vocabulary of Shakespeare, not on the
    shipped 12,000-piece ones). BPE and char tokenizers come out the same every time."""
    import json

    from tokenizers import Tokenizer

    if kind != "wordpiece":
        return tok
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    special = {t["content"] for t in spec["added_tokens"]}
    fixed = {t: i for t, i in vocab.items() if t in special}
    free = sorted(set(range(len(vocab))) - set(fixed.values()))
    spec["model"]["vocab"] = {**fixed, **dict(zip(sorted(t for t in vocab if t not in special), free))}
    return Tokenizer.from_str(json.dumps(spec))


def _add_template(tok, specials: Specials) -> None:
    """Encoder styles: `[CLS] A [SEP] B [SEP]` with token_type_ids 0/1; causal LMs: none."""
    from tokenizers import processors

    if specials is T5:  # as T5's tokenizers, "A </s>", "A </s> B </s>": </s> closes each text (the target's end); byte-level BPE keeps its own processor first
        eos = (specials.eos, tok.token_to_id(specials.eos))
        template = processors.TemplateProcessing(single=f"$A {eos[0]}", pair=f"$A {eos[0]} $B {eos[0]}", special_tokens=[eos])
        byte_level = tok.pre_tokenizer is not None and "ByteLevel" in repr(tok.pre_tokenizer)
        tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), template]) if byte_level else template
        return
    if specials.cls is None:
        if specials.eos is not None and tok.pre_tokenizer is not None and "ByteLevel" in repr(tok.pre_tokenizer):
            tok.post_processor = processors.ByteLevel(trim_offsets=False)
        return
    cls, sep = specials.cls, specials.sep
    ids = {t: tok.token_to_id(t) for t in (cls, sep)}
    if specials is ROBERTA:  # RoBERTa: <s> A </s></s> B </s>, no segment ids
        pair = f"{cls} $A {sep} {sep} $B {sep}"
    else:
        pair = f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=pair, special_tokens=[(t, i) for t, i in ids.items()])


def wrap(tok, specials: Specials, max_length: int, kind: str, extra_ids: int = 0):
    """A transformers tokenizer around a trained `tokenizers.Tokenizer`; `extra_ids` sentinels (already in `tok`)
    listed as its extra special tokens (tokenizer_config.json), as T5's tokenizers list them."""
    from transformers import PreTrainedTokenizerFast

    names = ["input_ids", "token_type_ids", "attention_mask"] if specials is BERT else ["input_ids", "attention_mask"]
    extra = {"extra_special_tokens": [sentinel(i) for i in range(extra_ids)]} if extra_ids else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=max_length, model_input_names=names,
        bos_token=specials.bos, eos_token=specials.eos, unk_token=specials.unk, pad_token=specials.pad,
        cls_token=specials.cls, sep_token=specials.sep, mask_token=specials.mask,
        clean_up_tokenization_spaces=False, **extra,
    )


def text_batches(ds, column: str, max_bytes: Optional[int] = None, batch_size: int = 1000) -> Iterator[list[str]]:
    """Batches of non-empty texts from a dataset column, stopping after max_bytes."""
    seen = 0
    for batch in ds.iter(batch_size=batch_size):
        texts = [t for t in batch[column] if isinstance(t, str) and t.strip()]
        if max_bytes is not None:
            keep = []
            for t in texts:
                if seen >= max_bytes:
                    break
                keep.append(t)
                seen += len(t.encode("utf-8"))
            texts = keep
        if texts:
            yield texts
        if max_bytes is not None and seen >= max_bytes:
            return


def load_tokenizer(path: str, trust_remote_code: bool = False, key: str = "tokenizer.path"):
    """Load a saved tokenizer from a local directory (or a hub id when `path` is not local); `key` names the
    recipe key that holds `path` in errors (model.from_pretrained when the model brings its tokenizer)."""
    from transformers import AutoTokenizer

    if is_gguf(path):
        return _gguf_tokenizer(path, key)
    path = resolve_package_path(path, key)
    if is_local(path) and not os.path.isdir(os.path.expanduser(path)):
        hint = " (run `ftkit tokenize` first, or set tokenizer.kind to train one)" if key == "tokenizer.path" else ""
        raise UserError(missing(path, key, hint=hint))
    try:
        return AutoTokenizer.from_pretrained(os.path.expanduser(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        note = not_found_note(path)
        raise UserError(f"{key}: {note}: {first}" if note else f"{key}: could not load a tokenizer from '{path}': {first}") from None


def _gguf_tokenizer(path: str, key: str):
    """The tokenizer inside a GGUF file (vocabulary, merges, special tokens and chat template), as a fast tokenizer."""
    from transformers import AutoTokenizer

    f = locate_gguf(path, key)
    try:
        tok = AutoTokenizer.from_pretrained(os.path.dirname(f), gguf_file=os.path.basename(f))
    except Exception as e:  # gguf and transformers raise their own types for files they cannot read
        raise UserError(f"{key}: could not read the tokenizer of {path}: {str(e).strip().splitlines()[0][:200]}") from None
    tok.name_or_path = f
    return tok


def tokenizer_max_length(recipe: Recipe) -> int:
    assert recipe.tokenizer is not None
    return recipe.tokenizer.max_length or recipe.data.block_size


def train_from_recipe(recipe: Recipe, entry: TaskEntry, train_ds):
    """Train the recipe's tokenizer on the training split, with the special tokens of `entry`'s models; return
    (hf_tokenizer, specials)."""
    cfg = recipe.tokenizer
    assert cfg is not None and cfg.kind is not None
    specials = specials_for(cfg.kind, entry)
    batches = text_batches(train_ds, recipe.data.text_column, cfg.max_train_bytes)
    tok = build_tokenizer(cfg.kind, cfg, specials, batches)
    return wrap(tok, specials, tokenizer_max_length(recipe), cfg.kind, cfg.extra_ids), specials


def save_tokenizer(hf_tok, path: str) -> None:
    """Write to a temp dir, then rename: an interrupted save never leaves half a tokenizer."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    hf_tok.save_pretrained(str(tmp))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
