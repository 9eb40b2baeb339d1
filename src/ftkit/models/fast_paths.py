"""Faster CPU training paths for the same functions: dropout, attention, GELU (`use_fast_paths`, called by the
train workflow on CPU; the saved model is unchanged: no weights and no config value are touched for good).

Dropout. Why by hand: on CPU `F.dropout` draws one Bernoulli per element through the generator (`bernoulli_`), ~90M
elements/s on this 2-core machine: 15 % of a GPT step with dropout 0.1 (bench/probes/profile_step.py). Here the mask
comes from 64 random bits per 4 elements (`random_` over the full int64 range, read as 16-bit integers; one element is dropped
when its 16 bits fall below round(p * 65536)): 2-2.5x faster (`python bench/probes/cpu_kernels.py`), the same expectation up to p's rounding to 1/65536,
the same scaling by 1 / (1 - p), deterministic under torch's seed. `nn.Dropout` modules are swapped (no weights,
so the saved model is unchanged); attention-probability dropout gets the same mask through the attention
implementation below.
"""

from __future__ import annotations

import torch
from torch import nn

from ftkit.models.anatomy import unwrap

LEVELS = 1 << 16


class FastDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return x * 0.0
        n = x.numel()
        # the full range: random_() alone draws 0..2^63-1, whose top 16 bits would never be negative
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(1 << 63), None)
        # the int16 values are signed (-32768..32767): threshold round(p * 65536) shifted by -32768
        below = int(round(self.p * LEVELS)) - LEVELS // 2
        keep = bits.view(torch.int16)[:n].view(x.shape) >= below
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))


def _swap(model: nn.Module, kind: type, make) -> int:
    """Replace every submodule of exactly type `kind` by make(it); how many were replaced."""
    swapped = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is kind:
                setattr(parent, name, make(child))
                swapped += 1
    return swapped


def use_fast_dropout(model: nn.Module) -> int:
    """Swap every plain nn.Dropout; returns how many were swapped."""
    return _swap(model, nn.Dropout, lambda d: FastDropout(d.p, d.inplace))


# Attention: with dropout, torch's CPU SDPA leaves its flash kernel for the math path and draws the mask with
# bernoulli_: 34 ms fwd+bwd per GPT layer (batch 8, 4 heads, 256 tokens, bf16) against 14 ms for the same math with
# the mask above. Without dropout its CPU flash kernel is slow in bf16 on short sequences (fwd+bwd, 2 cores, best of
# 3: ViT 128 x 4 heads x 50 x 16: 39.5 vs 8.7 ms for plain matmuls; BERT 16 x 4 x 128 x 64: 18.4 vs 8.2; char GPT
# 12 x 4 x 64 x 32: 3.9 vs 0.7), ties at 256 keys, and in fp32 it wins (6.4 vs 11.6 ms for the ViT shape: a ViT
# run lost 8 % with the math path in fp32). Registered as a transformers attention implementation: the math path
# on CPU for training with dropout, or bf16 with keys <= MATH_MAX_KEYS; SDPA itself otherwise; masks as for SDPA.
ATTENTION = "ftkit_sdpa"
MATH_MAX_KEYS = 128


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None, **kwargs):
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    with_dropout = module.training and dropout > 0.0
    bf16 = query.dtype == torch.bfloat16 or (torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
    math_path = query.device.type == "cpu" and (with_dropout or (bf16 and key.shape[-2] <= MATH_MAX_KEYS))
    if not math_path or kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = query.shape[1] // key.shape[1]  # grouped-query attention: each key/value head serves `groups` heads
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    # as transformers' SDPA path: causal unless the module says otherwise; without a mask the causal pattern is
    # SDPA's (top-left aligned), so keys beyond the queries (an empty static cache's slots) are dropped first
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    q_len = query.shape[-2]
    if causal and attention_mask is None and q_len > 1 and key.shape[-2] > q_len:
        key, value = key[..., :q_len, :], value[..., :q_len, :]
    scores = (query @ key.transpose(-1, -2)) * (scaling if scaling is not None else query.size(-1) ** -0.5)
    k_len = scores.shape[-1]
    lowest = torch.finfo(scores.dtype).min  # not -inf: a row with every key masked gets a uniform row, not NaN
    if attention_mask is not None:
        mask = attention_mask[..., :k_len]
        scores = scores.masked_fill(~mask, lowest) if mask.dtype == torch.bool else scores + mask
    elif causal and q_len > 1:
        keep = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, lowest)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    if with_dropout:
        probs = FastDropout(dropout)(probs)  # a fresh module is in training mode
    return (probs @ value).transpose(1, 2).contiguous(), None


def use_fast_attention(model: nn.Module) -> bool:
    """Switch a model on SDPA to ATTENTION (the saved config keeps its own implementation: it is not serialised)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    inner = unwrap(model)
    config = getattr(inner, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(inner, "set_attn_implementation"):
        return False
    AttentionInterface.register(ATTENTION, _attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    inner.set_attn_implementation(ATTENTION)
    return inner.config._attn_implementation == ATTENTION


def use_fast_gelu(model: nn.Module) -> int:
    """GPT-2's `gelu_new` is the tanh GELU written as seven tensor ops (NewGELUActivation); torch's fused
    F.gelu(approximate='tanh') computes the same function in one (transformers' GELUTanh; equal up to rounding).
    On the bench GPT the seven ops were ~15 % of a step (bench/probes/profile_step.py: mul, pow, tanh, add)."""
    from transformers.activations import GELUTanh, NewGELUActivation

    return _swap(model, NewGELUActivation, lambda _: GELUTanh())


def use_fast_paths(model: nn.Module) -> dict:
    """All of the above (for CPU training: CUDA's dropout and attention kernels are fast); what was switched."""
    return {"dropout": use_fast_dropout(model), "attention": use_fast_attention(model), "gelu": use_fast_gelu(model)}
