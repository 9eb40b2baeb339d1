"""Token streams: packing into blocks, nanoGPT's tail split, and the cache being reused."""

import numpy as np
import pytest

from ftkit import registry
from ftkit.data import lm_blocks, token_cache
from ftkit.data.tokenizer_source import obtain_tokenizer
from ftkit.errors import UserError
from ftkit.recipe import validate


def test_blocks_are_contiguous_and_drop_the_tail():
    stream = np.arange(103)
    b = token_cache.blocks(stream, 10)
    assert b.shape == (10, 10) and b[3, 0] == 30 and b[-1, -1] == 99
    with pytest.raises(UserError, match="less than one block"):
        token_cache.blocks(np.arange(5), 10)


def test_tail_split_is_the_last_fraction_of_the_stream(tiny_gpt_recipe, shakespeare_slice):
    r = validate(tiny_gpt_recipe)
    tok = obtain_tokenizer(r, registry.entry(r.task), log=lambda *_: None)
    train, val = lm_blocks.cached_blocks(r, tok, log=lambda *_: None)
    text = shakespeare_slice.read_text()
    cut = int(len(text) * 0.9)  # char tokenizer: tokens == characters
    assert tok.decode(train[0].tolist()) == text[:32]
    assert tok.decode(val[0].tolist()) == text[cut:cut + 32]
    assert len(train) == cut // 32 and len(val) == (len(text) - cut) // 32


def test_second_run_reads_the_cache(tiny_gpt_recipe):
    r = validate(tiny_gpt_recipe)
    tok = obtain_tokenizer(r, registry.entry(r.task), log=lambda *_: None)
    logs: list[str] = []
    a, _ = lm_blocks.cached_blocks(r, tok, log=logs.append)
    assert any("encoded" in m for m in logs)
    logs.clear()
    b, _ = lm_blocks.cached_blocks(r, tok, log=logs.append)
    assert logs and all("from cache" in m for m in logs)
    assert np.array_equal(a, b)
    # a different setting is a different cache entry
    r2 = validate({**tiny_gpt_recipe, "data": {**tiny_gpt_recipe["data"], "add_eos": True}})
    assert token_cache.cache_key(r2, tok, "train") != token_cache.cache_key(r, tok, "train")
    r3 = validate({**tiny_gpt_recipe, "data": {**tiny_gpt_recipe["data"], "delimiter": ";"}})  # fields split otherwise
    assert token_cache.cache_key(r3, tok, "train") != token_cache.cache_key(r, tok, "train")


def test_a_tokenizer_json_with_its_own_padding_and_truncation_encodes_unpadded():
    """The packaged MiniLM's tokenizer.json pads to 128 and truncates at 128 (sentence-transformers); streams
    and NSP sentences must hold the text's tokens only, and the user's tokenizer keeps its settings."""
    from ftkit.tasks.encoders.documents import build_corpus

    from tiny_models import minilm_tokenizer

    tok = minilm_tokenizer()
    assert tok.backend_tokenizer.padding is not None and tok.backend_tokenizer.truncation is not None
    long_text = " ".join(["the film was long"] * 100)  # ~400 tokens: past the json's truncation
    texts = ["A short review.", long_text]
    got = token_cache.encode_texts(tok, texts, add_eos=False)
    stream = token_cache.encode_stream(tok, [texts], add_eos=False)
    corpus = build_corpus([["It was good. Then it was bad."]], tok)
    assert tok.backend_tokenizer.padding["length"] == 128  # the user's tokenizer: untouched
    # (the transformers wrapper resets the backend's padding on each call: compare with it last)
    want = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert len(want[1]) > 128
    assert got == want
    assert stream.tolist() == want[0] + want[1]
    assert tok.pad_token_id not in corpus.tokens.tolist() and corpus.n_sentences == 2
    assert tok.decode(corpus.span(0, 1).tolist()) == "it was good."
