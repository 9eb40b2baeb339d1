"""`ftkit doctor`: what this machine and environment give ftkit — versions, devices, bf16, Accelerate's view."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform

from ftkit import lockfile
from ftkit.engine.accel import bf16_supported, resolve_precision

PACKAGES = ("ftkit", "torch", "transformers", "datasets", "tokenizers", "accelerate", "evaluate", "peft",
            "safetensors", "tensorboard", "matplotlib", "scikit-learn", "deepspeed")
ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU",
            "ACCELERATE_MIXED_PRECISION", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "HF_HUB_OFFLINE",
            "HF_DATASETS_OFFLINE", "HF_HOME")


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def report() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    from accelerate.commands.config import default_config_file

    launch = ("MULTI_GPU over NCCL" if cuda else "MULTI_CPU over gloo (ftkit sets ACCELERATE_USE_CPU=1 and uses the "
              "multi-GPU launcher: accelerate's --cpu launcher would start only one process)")

    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "tested_versions": lockfile.compare(), "extras_not_installed": lockfile.not_installed(),
        "extras": lockfile.extras(),
        "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": {"available": cuda, "devices": devices, "version": torch.version.cuda},
        "bf16_native": bf16_supported(), "precision_auto": resolve_precision("auto"),
        "accelerate": {"default_config_file": default_config_file,
                       "default_config_exists": os.path.isfile(default_config_file),
                       "num_processes_gt_1_launches": launch},
        "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }


def _install(lock, extras: set[str]) -> str:
    target = f"'.[{','.join(sorted(extras))}]'" if extras else "."
    return f"pip install -c {lock} -e {target}"


def version_lines(rows: list[dict], missing: tuple[dict, ...] = (), extras: dict | None = None) -> list[str]:
    """Installed next to tested (the lock CI passed with), and one warning naming what differs. The packages of
    extras that are not installed (`missing`) are listed apart: leaving an extra out is no difference."""
    if not rows:
        return ["tested versions: unknown (this ftkit ships no constraints.txt)"]
    from importlib import resources

    lock = resources.files("ftkit").joinpath("constraints.txt")
    out = ["tested versions (installed / tested):"]
    out += [f"  {'ok' if r['ok'] else '!!'} {r['package']:<16} {r['installed'] or 'not installed':<14} {r['tested']}"
            for r in rows]
    by_extra: dict[str, list[str]] = {}
    for m in missing:
        by_extra.setdefault(m["extra"], []).append(f"{m['package']} {m['tested']}")
    out += [f"  -- not installed (extra `{extra}`: {', '.join(names)}): {_install(lock, {extra})}"
            for extra, names in by_extra.items()]
    off = [r for r in rows if not r["ok"]]
    if off:
        # the command must reinstall the extras the differing packages came with, or it would leave them as they are
        named = {(extras or {}).get(r["package"]) for r in off} - {None}
        out.append(f"warning: {len(off)} package(s) differ from the versions ftkit was tested with "
                   f"({', '.join(r['package'] for r in off[:6])}{', ...' if len(off) > 6 else ''}); "
                   f"results may differ. Install the tested set: {_install(lock, named)}  (or `make venv`)")
    return out


def lines(r: dict) -> list[str]:
    pk = r["packages"]
    out = [f"ftkit {pk['ftkit']} | python {r['python']} | {r['platform']}",
           *version_lines(r["tested_versions"], r["extras_not_installed"], r["extras"]),
           "other packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()
                                          if k != "ftkit" and k not in {t["package"] for t in r["tested_versions"]}),
           f"cpu: {r['cpu_cores']} cores, torch threads {r['torch_threads']}, {r['cpu_capability']}",
           "cuda: " + (", ".join(r["cuda"]["devices"]) + f" (CUDA {r['cuda']['version']})" if r["cuda"]["available"] else "none"),
           f"bf16: {'native' if r['bf16_native'] else 'not native (autocast would be slower than fp32)'}; "
           f"train.precision auto -> {r['precision_auto']}",
           f"accelerate: default config {r['accelerate']['default_config_file']} "
           f"({'found' if r['accelerate']['default_config_exists'] else 'none'}); "
           f"--num-processes N > 1 -> {r['accelerate']['num_processes_gt_1_launches']}",
           "environment: " + (", ".join(f"{k}={v}" for k, v in r["environment"].items()) or "(no launch or hub variables set)")]
    return out
