"""Encoding a corpus into training blocks: `ftkit tokenize --encode` against run_clm's datasets.map path, in one run.

Corpus: IMDB train + test (jsonl) and WikiText-2 test (raw text), 14 MB, ~3.6M tokens. Tokenizer: one byte-level BPE
(vocabulary 8,000) trained by ftkit on that corpus, used by both sides. Each side runs in its own fresh process
(its peak memory is that process's max RSS) with its own empty caches, from the files on disk to blocks of 256 tokens:
  ftkit     `ftkit tokenize --encode`'s encoder (data/lm_blocks.cached_blocks): the flat token stream on disk
            (uint16 .npy), blocks as a view of it
  datasets  run_clm.py: load_dataset('json' / 'text', keep_linebreaks) -> map(tokenizer(batch), batched,
            num_proc=cores, remove_columns) -> map(group_texts, batched, num_proc=cores)
Both use every core: the `tokenizers` batch encoder is multi-threaded (rayon), datasets.map gets num_proc = cores.
Sides alternate (ftkit, datasets, ftkit, ...); the best of each is compared. Tokenizer training is not timed.

    .venv/bin/python bench/peers/tokenize_throughput.py [--repeats 2]

Last line: `ratio ftkit/datasets.map: X.X` (tokens/s from files to blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
FILES = [DATA / "imdb" / "train.jsonl", DATA / "imdb" / "test.jsonl", DATA / "wikitext-2" / "raw" / "wiki.test.raw"]
BLOCK = 256


def recipe_dict(tmp: Path, cache: Path) -> dict:
    return {"task": "clm", "output_dir": str(tmp / "run"),
            "tokenizer": {"kind": "bpe", "vocab_size": 8000, "path": str(tmp / "tok")},
            "model": {"model_type": "gpt2", "config": {"n_layer": 1, "n_embd": 32, "n_head": 1}},
            "data": {"train": [str(f) for f in FILES], "block_size": BLOCK, "cache_dir": str(cache)},
            "train": {"max_steps": 1}}


def side_ftkit(tmp: Path, cache: Path) -> dict:
    from transformers import AutoTokenizer

    from ftkit.data.lm_blocks import cached_blocks
    from ftkit.recipe import validate

    recipe = validate(recipe_dict(tmp, cache))
    tok = AutoTokenizer.from_pretrained(tmp / "tok")
    t = time.perf_counter()
    train, _ = cached_blocks(recipe, tok, lambda *_: None)
    seconds = time.perf_counter() - t
    meta = json.loads(next(cache.rglob("train.json")).read_text())
    return {"seconds": seconds, "tokens": meta["tokens"], "blocks": len(train), "encode_seconds": meta["seconds"]}


def side_datasets(tmp: Path, cache: Path) -> dict:
    from datasets import concatenate_datasets, load_dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp / "tok")
    procs = os.cpu_count() or 1
    t = time.perf_counter()
    parts = [load_dataset("json", data_files=[str(f) for f in FILES if f.suffix == ".jsonl"], split="train",
                          cache_dir=str(cache)).select_columns(["text"]),
             load_dataset("text", data_files=[str(f) for f in FILES if f.suffix != ".jsonl"], split="train",
                          keep_linebreaks=True, cache_dir=str(cache))]
    raw = concatenate_datasets(parts)
    t_load = time.perf_counter()
    tokenized = raw.map(lambda b: tok(b["text"]), batched=True, num_proc=procs, remove_columns=["text"])
    t_tok = time.perf_counter()

    def group_texts(examples):  # run_clm.py's
        concat = {k: sum(examples[k], []) for k in examples}
        total = (len(concat["input_ids"]) // BLOCK) * BLOCK
        out = {k: [v[i:i + BLOCK] for i in range(0, total, BLOCK)] for k, v in concat.items()}
        out["labels"] = out["input_ids"].copy()
        return out

    blocks = tokenized.map(group_texts, batched=True, num_proc=procs)
    t_end = time.perf_counter()
    tokens = sum(len(x) for x in tokenized["input_ids"])
    return {"seconds": t_end - t, "tokens": tokens, "blocks": len(blocks), "load_seconds": t_load - t,
            "encode_seconds": t_tok - t_load, "group_seconds": t_end - t_tok}


def run_side(name: str, tmp: Path, i: int) -> dict:
    """One side in a fresh process: its own imports, caches and peak memory."""
    cache = tmp / f"cache-{name}-{i}"
    code = (f"import json, resource, sys; sys.path.insert(0, {str(ROOT / 'bench' / 'peers')!r}); import tokenize_throughput as b; "
            f"from pathlib import Path; r = b.side_{name}(Path({str(tmp)!r}), Path({str(cache)!r})); "
            f"r['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
            f"r['workers_peak_rss_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; print(json.dumps(r))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"{name} side failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])  # workers_peak_rss_mib: datasets.map's worker processes
    r["tokens_per_s"] = r["tokens"] / r["seconds"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    missing = [str(f) for f in FILES if not f.is_file()]
    if missing:
        sys.exit(f"dataset not found: {', '.join(missing)}")
    from ftkit import registry
    from ftkit.data.tokenizer_source import obtain_tokenizer
    from ftkit.recipe import validate

    runs: dict = {"ftkit": [], "datasets": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        obtain_tokenizer(validate(recipe_dict(tmp, tmp / "unused")), registry.entry("clm"), log=lambda *_: None)
        for i in range(a.repeats):
            for name in ("ftkit", "datasets"):
                r = run_side(name, tmp, i)
                runs[name].append(r)
                print(f"repeat {i} {name}: {r['tokens']:,} tokens in {r['seconds']:.2f}s = {r['tokens_per_s']:,.0f} tok/s, "
                      f"{r['blocks']:,} blocks, peak RSS {r['peak_rss_mib']:,.0f} MiB (workers {r['workers_peak_rss_mib']:,.0f})"
                      + (f" (load {r['load_seconds']:.1f}s, tokenize {r['encode_seconds']:.1f}s, group {r['group_seconds']:.1f}s)"
                         if name == "datasets" else f" (encode {r['encode_seconds']:.1f}s)"), flush=True)
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
    tokenize_only = best["ftkit"]["tokens"] / best["ftkit"]["encode_seconds"] / (
        best["datasets"]["tokens"] / best["datasets"]["encode_seconds"])
    print(json.dumps({"cores": os.cpu_count(), "block": BLOCK, "best": best,
                      "ratio_tokenize_stage_only": round(tokenize_only, 2)}))
    print(f"tokenize stage alone (ftkit encode vs datasets.map(tokenizer)): {tokenize_only:.2f}x")
    print(f"ratio ftkit/datasets.map: {best['ftkit']['tokens_per_s'] / best['datasets']['tokens_per_s']:.1f}")


if __name__ == "__main__":
    main()
