"""Where the parts of a Transformers model are: its stack of layers, its embeddings, its linear layers.

Freezing, distillation (cutting a teacher to its bottom layers) and pruning need these; they are found
by structure (the ModuleList as long as the config's layer count) rather than per-architecture tables,
so BERT, RoBERTa, DistilBERT, GPT-2, llama, ... all work.
"""

from __future__ import annotations

from typing import Optional

import torch

LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def unwrap(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def layer_count_key(config) -> Optional[str]:
    for key in LAYER_COUNT_KEYS:
        if isinstance(getattr(config, key, None), int):
            return key
    return None


def layer_stack(model) -> tuple[torch.nn.Module, str, torch.nn.ModuleList]:
    """(parent module, attribute name, the ModuleList of transformer layers), bottom layer first."""
    key = layer_count_key(model.config)
    n = getattr(model.config, key) if key else None
    for _name, module in model.named_modules():
        for attr, child in module.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == n and len(child) > 0:
                return module, attr, child
    raise ValueError(f"cannot find the stack of {n} transformer layers in {type(model).__name__}")


def embedding_modules(model) -> list[torch.nn.Module]:
    """Every embedding table outside the layer stack (token, position, segment); the output head is not one."""
    _, _, stack = layer_stack(model)
    inside = {id(m) for m in stack.modules()}
    return [m for m in model.modules() if isinstance(m, torch.nn.Embedding) and id(m) not in inside]


def is_linear(module) -> bool:
    """nn.Linear or GPT-2's Conv1D (a linear layer with its weight stored transposed)."""
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))


def linear_names(model) -> list[str]:
    """The distinct last components of linear layers' names (what peft's target_modules match)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if name and is_linear(m)})


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6N + 12*L*H*Q*T (PaLM / nanoGPT), N without position embeddings.
    (The config's attribute_map gives GPT-2's n_layer / n_head / n_embd the common names.)"""
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "position" not in name and "wpe" not in name)
    layers, heads, hidden = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
    return 6 * n + 12 * layers * heads * (hidden // max(heads, 1)) * seq_len


def activation_bytes(cfg, seq_len: int, batch: int, half: bool) -> float:
    """Activation memory of one micro-batch: L * (34*s*b*h + 5*a*s^2*b) bytes at 16-bit (Korthikanti et al. 2022)."""
    layers = getattr(cfg, "num_hidden_layers", 0) or 0
    heads = getattr(cfg, "num_attention_heads", 1) or 1
    hidden = getattr(cfg, "hidden_size", 0) or 0
    per_layer = 34 * seq_len * batch * hidden + 5 * heads * seq_len * seq_len * batch
    return layers * per_layer * (1 if half else 2)
