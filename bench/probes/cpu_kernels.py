"""The kernel timings README's "Speed" section quotes, re-measured in one run (fwd+bwd where it trains; best of 3):

  matmul   GFLOP/s of the bench GPT's own layer shapes in bf16 (against the 2048^2 peak)
  attention  torch SDPA (its CPU flash kernel) against plain matmuls + softmax, fp32 and bf16, for the shapes of
           the ViT, BERT and char-GPT recipes (what models/fast_paths.py chooses between)
  dropout  a mask from torch's bernoulli_ against FastDropout's 16-bit draws (models/fast_paths.py)

    .venv/bin/python bench/probes/cpu_kernels.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F


def best_ms(fn, repeats: int = 10, rounds: int = 3) -> float:
    fn()
    out = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        out = min(out, (time.perf_counter() - t) / repeats * 1000)
    return out


def matmuls() -> None:
    for m, k, n in [(2048, 2048, 2048), (2048, 256, 768), (2048, 256, 1024), (2048, 1024, 256), (2048, 256, 8000)]:
        a, b = torch.randn(m, k, dtype=torch.bfloat16), torch.randn(k, n, dtype=torch.bfloat16)
        print(f"matmul bf16 {m}x{k} @ {k}x{n}: {2 * m * k * n / best_ms(lambda a=a, b=b: a @ b, 30) / 1e6:,.0f} GFLOP/s")


def attention() -> None:
    shapes = {"ViT (vit-fashion-mnist)": (128, 4, 50, 16), "BERT (bert-mlm-nsp-movies)": (16, 4, 128, 64),
              "char GPT (causal)": (12, 4, 64, 32)}
    for bf16 in (False, True):
        for name, (b, h, t, d) in shapes.items():
            q, k, v = [torch.randn(b, h, t, d, requires_grad=True) for _ in range(3)]
            causal = "causal" in name

            def sdpa(q=q, k=k, v=v, bf16=bf16, causal=causal):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                o.float().sum().backward()

            def math(q=q, k=k, v=v, bf16=bf16, causal=causal, d=d, t=t):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    s = (q @ k.transpose(-1, -2)) * d ** -0.5
                    if causal:
                        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
                    p = torch.softmax(s, -1, dtype=torch.float32).to(torch.bfloat16 if bf16 else torch.float32)
                    o = p @ v
                o.float().sum().backward()

            print(f"attention {'bf16' if bf16 else 'fp32'} {name} {b}x{h}x{t}x{d}: SDPA {best_ms(sdpa):.1f} ms, "
                  f"matmuls {best_ms(math):.1f} ms")


def dropout() -> None:
    from ftkit.models.fast_paths import FastDropout

    x = torch.randn(8, 256, 1024).bfloat16()
    print(f"dropout mask, {x.numel():,} bf16 elements: F.dropout {best_ms(lambda: F.dropout(x, 0.1, True)):.1f} ms, "
          f"FastDropout {best_ms(lambda: FastDropout(0.1)(x)):.1f} ms")


if __name__ == "__main__":
    matmuls()
    attention()
    dropout()
