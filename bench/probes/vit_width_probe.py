"""Training throughput of small ViTs on 28x28 inputs, model only (synthetic batches, AdamW, fp32 or bf16 autocast):
how much width, depth, heads and patch size cost on this CPU, to choose the width of `vit-fashion-mnist` for the
epochs its 15-minute budget holds. Steps 4.. are timed; the host's noise is ±10-20 %, so compare within one run.

    .venv/bin/python bench/probes/vit_width_probe.py [--steps 15] [--batch 128]

One line per configuration: parameters and images/s.
"""

from __future__ import annotations

import argparse
import time

import torch

# (hidden, layers, heads, mlp, patch, precision)
CONFIGS = [(128, 6, 4, 256, 4, "fp32"), (96, 6, 4, 192, 4, "fp32"), (64, 6, 4, 128, 4, "fp32"), (64, 6, 2, 128, 4, "fp32"),
           (128, 6, 4, 256, 7, "fp32"), (128, 6, 4, 256, 4, "bf16")]


def probe(hidden: int, layers: int, heads: int, mlp: int, patch: int, precision: str, batch: int, steps: int) -> None:
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=mlp,
                    patch_size=patch, image_size=28, num_labels=10, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = ViTForImageClassification(cfg)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 3, 28, 28), torch.randint(0, 10, (batch,))
    for i in range(steps + 3):
        if i == 3:
            t = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = model(pixel_values=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    rate = batch * steps / (time.perf_counter() - t)
    params = sum(p.numel() for p in model.parameters())
    print(f"width {hidden:>3} layers {layers} heads {heads} mlp {mlp:>3} patch {patch} {precision}: "
          f"{params / 1e6:.2f}M parameters, {rate:,.0f} images/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    for c in CONFIGS:
        probe(*c, batch=a.batch, steps=a.steps)


if __name__ == "__main__":
    main()
