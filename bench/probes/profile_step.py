"""Where a training step's time goes: torch.profiler over optimizer steps of ftkit's own task code.

Two steps, each the model of a bench or shipped recipe, built as ftkit builds it, with ftkit's task loss (the
code the engine's loop calls), AdamW and the precision `auto` picks on this machine:
  clm  the bench GPT of pretrain_throughput.py (GPT-2, 4 layers x 256, vocab 8,000, block 256, batch 8)
  mlm  the BERT of recipes/bert-mlm-nsp-movies.yaml (its config, dropout 0 as it says, vocab 8,000,
       block 128, batch 16, masking 15 %), MLM only
Random token ids stand in for data (the data pipeline is measured separately: it is not in the step).
Prints, per step kind, the top ops by self CPU time and the step's wall time. `--plain`: torch's dropout and the
unfused loss, as before the changes this table motivated (tasks/lm/loss.py, models/fast_paths.py).

    .venv/bin/python bench/probes/profile_step.py [--steps 6] [--only clm|mlm] [--precision bf16|fp32] [--rows 15]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
VOCAB = 8000
PLAIN = [False]
ACCELERATOR: list = []


def clm_setup():
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftkit.tasks.lm.clm import CausalLM

    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=256, n_layer=4, n_embd=256, n_head=4))
    task = CausalLM(fused=not PLAIN[0])
    rng = np.random.default_rng(0)
    return model, task, lambda: task.collate(list(rng.integers(0, VOCAB, size=(8, 256))), rng)


def mlm_setup():
    import yaml
    from tokenizers import Tokenizer, models
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    from ftkit.tasks.encoders.mlm import MaskedLM
    from ftkit.tasks.encoders.section import MaskingSection

    recipe = yaml.safe_load((ROOT / "src/ftkit/recipes/bert-mlm-nsp-movies.yaml").read_text())
    cfg = dict(recipe["model"].get("config", {}))
    model = BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **cfg))
    vocab = {f"w{i}": i for i in range(VOCAB - 5)} | {t: VOCAB - 5 + i for i, t in
                                                      enumerate(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                  pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                  unk_token="[UNK]")
    task = MaskedLM(tok, MaskingSection())
    rng = np.random.default_rng(0)
    return model, task, lambda: task.collate(list(rng.integers(0, VOCAB - 5, size=(16, 126))), rng)


def profile(kind: str, steps: int, precision: str, rows: int, plain: bool) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.manual_seed(0)
    model, task, batch = {"clm": clm_setup, "mlm": mlm_setup}[kind]()
    if not plain:  # what `ftkit pretrain` does on CPU (workflows/train.py)
        from ftkit.models.fast_paths import use_fast_paths

        use_fast_paths(model)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    # as the engine: accelerate wraps the model's forward in autocast (only the forward: the loss runs after it)
    model, opt = ACCELERATOR[0].prepare(model, opt)

    def step():
        b = batch()
        loss = task.loss(model, b) / task.count_targets(b)
        ACCELERATOR[0].backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - t) / steps
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    params = sum(p.numel() for p in model.parameters())
    print(f"\n## {kind}: {params / 1e6:.2f}M parameters, {precision}, {torch.get_num_threads()} threads, "
          f"{wall * 1000:.0f} ms per step (unprofiled, mean of {steps})")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows,
                                    max_name_column_width=40, max_shapes_column_width=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--only", choices=["clm", "mlm"])
    ap.add_argument("--precision", choices=["bf16", "fp32"])
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--plain", action="store_true", help="torch's dropout and the unfused loss (the 'before' table)")
    a = ap.parse_args()
    from ftkit.engine.accel import resolve_precision

    precision = a.precision or resolve_precision("auto")
    PLAIN[0] = a.plain
    from accelerate import Accelerator

    ACCELERATOR.append(Accelerator(mixed_precision={"fp32": "no"}.get(precision, precision), cpu=True))
    for kind in [a.only] if a.only else ["clm", "mlm"]:
        profile(kind, a.steps, precision, a.rows, a.plain)


if __name__ == "__main__":
    main()
