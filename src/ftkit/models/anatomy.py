"""Where the parts of a Transformers model are: its stack of layers, its embeddings, its linear layers.

Freezing, distillation (cutting a teacher to its bottom layers) and pruning need these; they are found
by structure (the ModuleList as long as the config's layer count) rather than per-architecture tables,
so BERT, RoBERTa, DistilBERT, GPT-2, llama, ... all work.
"""

from __future__ import annotations

from typing import Optional

import torch
from accelerate.utils import extract_model_from_parallel


def unwrap(model):
    """The transformers model inside whatever wraps it for training: DDP (`.module`), torch.compile (`_orig_mod`),
    a peft adapter (`get_base_model()`); the model itself when nothing does. One helper for every such site."""
    model = extract_model_from_parallel(model, keep_fp32_wrapper=True, keep_torch_compile=False)
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def layer_count(config) -> Optional[int]:
    """The config's number of transformer layers: `num_hidden_layers`, which attribute_map resolves for configs
    that call it otherwise (GPT-2's n_layer, DistilBERT's n_layers); setting it sets theirs."""
    n = getattr(config, "num_hidden_layers", None)
    return n if isinstance(n, int) else None


def layer_stack(model) -> tuple[torch.nn.Module, str, torch.nn.ModuleList]:
    """(parent module, attribute name, the ModuleList of transformer layers), bottom layer first."""
    n = layer_count(model.config)
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


def _shape(cfg) -> tuple[int, int, int]:
    """(layers, heads, hidden) by the common names, which each config's attribute_map resolves (GPT-2's n_layer,
    n_head, n_embd; DistilBERT's n_layers, ...); 0 / 1 for a config without them (an estimate, never a crash)."""
    return (getattr(cfg, "num_hidden_layers", 0) or 0, getattr(cfg, "num_attention_heads", 1) or 1,
            getattr(cfg, "hidden_size", 0) or 0)


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6N + 12*L*H*Q*T (PaLM / nanoGPT), N without position embeddings."""
    n = sum(p.numel() for name, p in model.named_parameters() if "position" not in name and "wpe" not in name)
    layers, heads, hidden = _shape(model.config)
    return 6 * n + 12 * layers * heads * (hidden // heads) * seq_len


def activation_bytes(cfg, seq_len: int, batch: int, half: bool) -> float:
    """Activation memory of one micro-batch: L * (34*s*b*h + 5*a*s^2*b) bytes at 16-bit (Korthikanti et al. 2022)."""
    layers, heads, hidden = _shape(cfg)
    per_layer = 34 * seq_len * batch * hidden + 5 * heads * seq_len * seq_len * batch
    return layers * per_layer * (1 if half else 2)
