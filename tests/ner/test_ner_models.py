"""NER models and tokenizers: LoRA round trip, re-heading, byte-level BPE words, slow tokenizers, hub ClassLabels."""

import types

import pytest
import torch

from ftkit import registry
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.strategy import apply_strategy, save_weights
from ftkit.recipe.schema import DataSection, FinetuneSection
from ftkit.tasks.ner import data as tagged
from ftkit.tasks.ner.items import check_tokenizer, encode
from ftkit.tasks.ner.section import NerSection

from tiny_models import bert_config, minilm_tokenizer

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def tiny_token_classifier(tmp_path):
    from transformers import AutoModelForTokenClassification, BertForTokenClassification

    torch.manual_seed(0)
    tok = minilm_tokenizer()
    BertForTokenClassification(bert_config(tok, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)),
                                           label2id={n: i for i, n in enumerate(TAGS)})).save_pretrained(str(tmp_path / "base"))
    return tok, AutoModelForTokenClassification.from_pretrained(str(tmp_path / "base"))


def test_lora_adapter_for_ner_round_trips(tmp_path):
    tok, model = tiny_token_classifier(tmp_path)
    model = apply_strategy(model, FinetuneSection(strategy="lora", lora_r=4, target_modules=["query", "value"]), registry.entry("ner"),
                           log=lambda m: None)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    model.eval()
    batch = tok(["Ann lives in Oslo"], return_tensors="pt")
    want = model(**batch).logits
    out = tmp_path / "adapter"
    out.mkdir()
    save_weights(model, out, model.state_dict())
    again = saved.load_model(str(out), registry.entry("ner"))
    assert torch.allclose(again(**batch).logits, want, atol=1e-6)


def test_byte_level_bpe_gets_add_prefix_space(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + list(pre_tokenizers.ByteLevel.alphabet()))}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>").save_pretrained(str(tmp_path / "t"))
    from transformers import AutoTokenizer

    tok = check_tokenizer(AutoTokenizer.from_pretrained(str(tmp_path / "t")), "tokenizer")
    ids = tok(["Ann", "runs"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[0] == "Ġ"  # the word is tokenized as in running text: " Ann"
    t = tagged.Tagged([["Ann", "runs"]], [["B-PER", "O"]], ["x:1"])
    (item,), _ = encode(t, tok, 32, {n: i for i, n in enumerate(TAGS)}, ["input_ids", "attention_mask"])
    assert [k for k in item["word_key"] if k >= 0] == [0, 1]


def test_slow_tokenizer_is_refused():
    with pytest.raises(UserError, match="slow tokenizer; token classification needs a fast one"):
        check_tokenizer(types.SimpleNamespace(is_fast=False), "tokenizer")


def test_hub_dataset_tags_named_by_classlabel(monkeypatch):
    import datasets

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ann", "in", "Oslo"]], "ner_tags": [[1, 0, 3]]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, split=None: ds)
    t = tagged.load("someone/ner-data", DataSection(train="someone/ner-data"), NerSection(), "data.train")
    assert t.tags == [["B-PER", "O", "B-LOC"]] and t.where == ["hub:someone/ner-data row 1"]
