"""Create the Accelerator: device, mixed precision, logging dir, seeds and threads."""

from __future__ import annotations

import importlib.util
from typing import Optional

import torch


def bf16_supported() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # On CPUs without native bf16 (AVX512-BF16 / AMX) autocast works but runs slower than fp32.
    cpu = getattr(torch, "cpu", None)
    return bool(cpu is not None and getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())


def resolve_precision(precision: str) -> str:
    """'auto' -> 'bf16' where the hardware does bf16 natively, else 'fp32'."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return precision


def make_accelerator(precision: str, project_dir: Optional[str] = None, seed: int = 0, threads: Optional[int] = None):
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    if threads:
        torch.set_num_threads(threads)
    mp = resolve_precision(precision)
    log_with = "tensorboard" if project_dir and importlib.util.find_spec("tensorboard") else None
    acc = Accelerator(mixed_precision={"fp32": "no"}.get(mp, mp), cpu=not torch.cuda.is_available(),
                      log_with=log_with, project_dir=project_dir)
    set_seed(seed)
    return acc
