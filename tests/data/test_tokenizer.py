"""Each tokenizer kind trains, saves, reloads with plain AutoTokenizer and round-trips text."""

import pytest

from ftkit import registry
from ftkit.data.tokenizer import build_tokenizer, specials_for, wrap
from ftkit.recipe.schema import TokenizerSection

from conftest import SHAKESPEARE, need

SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


@pytest.fixture(scope="module")
def corpus():
    lines = need(SHAKESPEARE).read_text()[:200_000].splitlines(keepends=True)
    return [lines[i:i + 500] for i in range(0, len(lines), 500)]


def train(kind, task, corpus, tmp_path, **kw):
    from transformers import AutoTokenizer

    cfg = TokenizerSection(path="unused", kind=kind, vocab_size=kw.pop("vocab_size", 1000), **kw)
    sp = specials_for(kind, registry.entry(task))
    tok = wrap(build_tokenizer(kind, cfg, sp, corpus), sp, 128, kind)
    tok.save_pretrained(tmp_path / kind)
    return AutoTokenizer.from_pretrained(tmp_path / kind)


@pytest.mark.parametrize("kind", ["bpe", "unigram", "char"])
def test_exact_round_trip(kind, corpus, tmp_path):
    tok = train(kind, "clm", corpus, tmp_path)
    ids = tok(SAMPLE, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == SAMPLE
    assert tok.unk_token_id not in ids


def test_char_tokenizer_is_one_token_per_character(corpus, tmp_path):
    tok = train("char", "clm", corpus, tmp_path, vocab_size=200)
    assert len(tok(SAMPLE, add_special_tokens=False)["input_ids"]) == len(SAMPLE)
    assert tok.pad_token_id != tok.eos_token_id


def test_wordpiece_bert_style(corpus, tmp_path):
    tok = train("wordpiece", "mlm+nsp", corpus, tmp_path, lowercase=True)
    enc = tok("hear me speak.", "all speak.")
    toks = tok.convert_ids_to_tokens(enc["input_ids"])
    assert toks[0] == "[CLS]" and toks.count("[SEP]") == 2
    assert enc["token_type_ids"][: toks.index("[SEP]") + 1] == [0] * (toks.index("[SEP]") + 1)
    assert enc["token_type_ids"][-1] == 1
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "hear me speak. all speak."
    for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert t in tok.all_special_tokens


def test_bpe_encoder_style_has_mask(corpus, tmp_path):
    tok = train("bpe", "mlm", corpus, tmp_path)
    assert tok.mask_token == "<mask>" and tok.cls_token == "<s>"
    ids = tok("Speak, speak.")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id


def test_wordpiece_ids_do_not_depend_on_the_trainers_hash_order(corpus):
    # tokenizers numbers WordPiece's '##' pieces in hash-map order (a new one in every process): the same pieces
    # under other ids must come out numbered the same
    import json
    import random

    from tokenizers import Tokenizer

    from ftkit.data.tokenizer import _canonical_ids

    cfg = TokenizerSection(path="unused", kind="wordpiece", vocab_size=600)
    tok = build_tokenizer("wordpiece", cfg, specials_for("wordpiece", registry.entry("mlm")), corpus)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    special = {t["content"] for t in spec["added_tokens"]}
    plain = [t for t in vocab if t not in special]
    ids = [vocab[t] for t in plain]
    random.Random(0).shuffle(ids)
    spec["model"]["vocab"] = {**{t: vocab[t] for t in special}, **dict(zip(plain, ids))}
    shuffled = Tokenizer.from_str(json.dumps(spec))
    assert shuffled.to_str() != tok.to_str()
    assert _canonical_ids(shuffled, "wordpiece").to_str() == tok.to_str()
    assert all(tok.token_to_id(t) == i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    text = "Before we proceed any further, hear me speak."
    assert shuffled.decode(shuffled.encode(text).ids) == tok.decode(tok.encode(text).ids)
