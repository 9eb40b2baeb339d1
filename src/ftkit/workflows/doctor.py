"""`ftkit doctor`: what this machine and environment give ftkit — versions, devices, bf16, Accelerate's view."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform

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

    from ftkit.engine.accel import bf16_supported, resolve_precision

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    from accelerate.commands.config import default_config_file

    launch = ("MULTI_GPU over NCCL" if cuda else "MULTI_CPU over gloo (ftkit sets ACCELERATE_USE_CPU=1 and uses the "
              "multi-GPU launcher: accelerate's --cpu launcher would start only one process)")
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": {"available": cuda, "devices": devices, "version": torch.version.cuda},
        "bf16_native": bf16_supported(), "precision_auto": resolve_precision("auto"),
        "accelerate": {"default_config_file": default_config_file,
                       "default_config_exists": os.path.isfile(default_config_file),
                       "num_processes_gt_1_launches": launch},
        "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }


def lines(r: dict) -> list[str]:
    pk = r["packages"]
    out = [f"ftkit {pk['ftkit']} | python {r['python']} | {r['platform']}",
           "packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if k != "ftkit"),
           f"cpu: {r['cpu_cores']} cores, torch threads {r['torch_threads']}, {r['cpu_capability']}",
           "cuda: " + (", ".join(r["cuda"]["devices"]) + f" (CUDA {r['cuda']['version']})" if r["cuda"]["available"] else "none"),
           f"bf16: {'native' if r['bf16_native'] else 'not native (autocast would be slower than fp32)'}; "
           f"train.precision auto -> {r['precision_auto']}",
           f"accelerate: default config {r['accelerate']['default_config_file']} "
           f"({'found' if r['accelerate']['default_config_exists'] else 'none'}); "
           f"--num-processes N > 1 -> {r['accelerate']['num_processes_gt_1_launches']}",
           "environment: " + (", ".join(f"{k}={v}" for k, v in r["environment"].items()) or "(no launch or hub variables set)")]
    return out
