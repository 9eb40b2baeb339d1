"""Shared helpers for the masked-LM / NSP tests: real text slices and small tokenizers trained on them."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA, need

IMDB_TRAIN = DATA / "imdb" / "train.jsonl"
IMDB_TEST = DATA / "imdb" / "test.jsonl"
SST2_TRAIN = DATA / "sst2" / "glue" / "train.tsv"
WIKI_RAW = DATA / "wikitext-2" / "raw" / "wiki.test.raw"


class FakeTokenizer:
    """Just what MaskedLM and a model built from a config read: ids of the special tokens and a vocabulary size."""
    pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return 300

    def convert_ids_to_tokens(self, i):
        return f"t{i}"


def imdb_texts(n: int, path: Path = IMDB_TRAIN, every: int = 1) -> list[str]:
    """n reviews, taking every `every`-th row (the file is sorted neg then pos per id)."""
    out = []
    with open(need(path)) as f:
        for i, line in enumerate(f):
            if i % every == 0:
                out.append(json.loads(line)["text"])
                if len(out) == n:
                    break
    return out


def write_imdb_slice(path: Path, n: int, every: int = 1, source: Path = IMDB_TRAIN) -> Path:
    with open(need(source)) as f:
        rows = [l for i, l in enumerate(f) if i % every == 0][:n]
    path.write_text("".join(rows))
    return path


def write_sst2_slice(path: Path, n: int) -> Path:
    with open(need(SST2_TRAIN)) as f:
        path.write_text("".join(next(f) for _ in range(n + 1)))  # header + n rows
    return path


def train_tokenizer(kind: str, task: str, texts: list[str], folder: Path, vocab_size: int = 2000, lowercase: bool = True):
    """Train, save and reload (plain AutoTokenizer) a tokenizer the way `ftkit tokenize` does."""
    from transformers import AutoTokenizer

    from ftkit import registry
    from ftkit.data.tokenizer import build_tokenizer, specials_for, wrap
    from ftkit.recipe.schema import TokenizerSection

    cfg = TokenizerSection(path=str(folder), kind=kind, vocab_size=vocab_size, lowercase=lowercase)
    sp = specials_for(kind, registry.entry(task))
    batches = [texts[i:i + 200] for i in range(0, len(texts), 200)]
    wrap(build_tokenizer(kind, cfg, sp, batches), sp, 128, kind).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)
