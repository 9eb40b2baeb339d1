"""Which weights a resumable checkpoint holds: all of them, or only those training changes.

A model with a frozen base (finetune.strategy lora / prefix / prompt, or freeze) changes only its trainable
parameters; writing the frozen base into every checkpoint made a SmolLM2 LoRA checkpoint 524 MiB for a few MiB
of adapter. Such a checkpoint holds the trainable parameters and the persistent buffers (state that may change
in train mode even when frozen, e.g. BatchNorm statistics; none in transformers' language models), next to the
optimizer, RNG and trainer state accelerate writes as before. `--resume` rebuilds the model from the recipe as
the run started (the same base, the same strategy) and loads these on top. A fingerprint of the frozen weights
(SHA-256 of their bytes, taken once: they never change while training) is kept in trainer_state.json, so a
resume whose rebuilt base differs (a base model file replaced since, a random initialisation) is refused
rather than silently mixing two models. Full fine-tuning, FSDP and DeepSpeed keep the full checkpoint.

It works through accelerate's own state hooks: the save hook filters the model's state dict before accelerate
writes model.safetensors, the load hook loads such a file itself (strictly: exactly the trainable names) and
leaves a full file, e.g. a checkpoint written before this, to accelerate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import torch

TRAINABLE = "trainable"  # trainer_state.json "weights.saved": only the trainable weights (else "full")


def _frozen(model) -> list[tuple[str, torch.Tensor]]:
    return [(n, p) for n, p in model.named_parameters() if not p.requires_grad]


def kept_names(model, state_names) -> set[str]:
    """Names of the state dict a trainable-only checkpoint keeps: the trainable parameters (under every name a
    tied parameter has) and whatever in the state dict is not a parameter (persistent buffers)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    return {n for n in state_names if n not in params or params[n].requires_grad}


def fingerprint(model) -> str:
    """SHA-256 over the frozen parameters' names, dtypes, shapes and bytes (~0.3 s for SmolLM2's 269 MB in bf16)."""
    h = hashlib.sha256()
    for name, p in sorted(_frozen(model), key=lambda x: x[0]):
        t = p.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(memoryview(t.view(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def unfit(state: dict, model) -> Optional[str]:
    """Before resuming from a checkpoint with trainer_state `state`: why it cannot continue on `model` (the model
    rebuilt from the recipe, unwrapped), or None."""
    saved = state.get("weights", {})
    if saved.get("saved") != TRAINABLE:
        return None  # a full checkpoint carries its own base
    if not _frozen(model):
        return ("it holds only the trainable weights of a model with a frozen base, and this recipe trains every "
                "weight (finetune.strategy changed?)")
    if saved.get("frozen_sha256") != fingerprint(model):
        return ("the frozen base weights rebuilt from the recipe differ from those the run trained on (the file "
                "model.from_pretrained names changed since?); the checkpoint holds only the trained weights, so "
                "resume with the base the run started from")
    return None


class CheckpointWeights:
    """Installs the save / load hooks on `accelerator` for `model` (the prepared model) until `remove()`."""

    def __init__(self, accelerator, model):
        self.model = model
        self.inner = accelerator.unwrap_model(model)  # the fingerprint's names: those of the model as built (no DDP prefix)
        plain = accelerator.distributed_type.name not in ("FSDP", "DEEPSPEED", "MEGATRON_LM")  # sharded: their own formats
        self.trainable_only = plain and bool(_frozen(model))
        self._fingerprint: Optional[str] = None
        self._device = str(accelerator.device)
        self._handles = []
        if self.trainable_only:
            self._handles = [accelerator.register_save_state_pre_hook(self._on_save),
                             accelerator.register_load_state_pre_hook(self._on_load)]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def describe(self) -> dict:
        """What trainer_state.json records about the weights of a checkpoint written now."""
        if not self.trainable_only:
            return {"saved": "full"}
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.inner)
        return {"saved": TRAINABLE, "frozen_tensors": len(_frozen(self.inner)), "frozen_sha256": self._fingerprint}

    def _ours(self, models) -> list[int]:
        return [i for i, m in enumerate(models) if m is self.model]

    def _on_save(self, models, weights, _output_dir) -> None:
        for i in self._ours(models):
            if i < len(weights):
                keep = kept_names(self.model, weights[i].keys())
                weights[i] = {k: v for k, v in weights[i].items() if k in keep}

    def _on_load(self, models, input_dir) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        for i in reversed(self._ours(models)):
            path = Path(input_dir) / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")
            if not path.is_file():
                continue  # accelerate's own loading says what is missing
            with safe_open(str(path), framework="pt") as f:
                names = set(f.keys())
            keep = kept_names(self.model, self.model.state_dict().keys())
            if names > keep:
                continue  # a full checkpoint (written before trainable-only ones): accelerate loads it as before
            if names != keep:
                extra, missing = sorted(names - keep), sorted(keep - names)
                raise ValueError(f"{path.name} holds {len(names)} tensors, this model trains {len(keep)}"
                                 + (f"; not here: {extra[0]}" if extra else "") + (f"; not there: {missing[0]}" if missing else ""))
            self.model.load_state_dict(load_file(str(path), device=self._device), strict=False)
            del models[i]  # loaded: accelerate's strict load of the full state dict must not run
