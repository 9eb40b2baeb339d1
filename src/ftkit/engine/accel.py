"""Create the Accelerator: device, mixed precision, logging dir, seeds and threads."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ftkit.engine.trackers import LOGS, resolve


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


def make_accelerator(precision: str, project_dir: Optional[str] = None, seed: int = 0, threads: Optional[int] = None,
                     trackers: Optional[Sequence[str]] = None):
    """trackers: what the run logs to (engine/trackers.resolve); None: TensorBoard where installed. Only with a
    project_dir (a run directory): their local files go under project_dir/logs."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    if threads:
        torch.set_num_threads(threads)
    mp = resolve_precision(precision)
    log_with = (list(trackers) if trackers is not None else resolve(None)) if project_dir else []
    project = ProjectConfiguration(project_dir=project_dir, logging_dir=f"{project_dir}/{LOGS}") if project_dir else None
    acc = Accelerator(mixed_precision={"fp32": "no"}.get(mp, mp), cpu=not torch.cuda.is_available(),
                      log_with=log_with or None, project_config=project)
    set_seed(seed)
    return acc
