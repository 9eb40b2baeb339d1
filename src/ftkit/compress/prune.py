"""Pruning: unstructured magnitude pruning of the transformer layers' weights, and attention-head pruning.

Unstructured: `torch.nn.utils.prune` (L1 magnitude) over every Linear / Conv1D weight inside the layer
stack (attention and feed-forward; embeddings and the task head stay dense), either globally (one
threshold for all of them, so layers end up with different sparsities) or per layer (each tensor at the
target); the pruning is then made permanent (`prune.remove`), so the saved model is a plain one.

Heads: importance as Michel et al. (2019), "Are Sixteen Heads Really Better than One?": a gate xi_h = 1
multiplies each head's output before the attention output projection, and I_h = sum over batches of
|dL/dxi_h|, normalised per layer (L2). The least important heads are removed by zeroing their query /
key / value rows and their columns of the output projection. transformers 5 has no `prune_heads`, and
BERT / GPT-2 configs cannot express a different head count per layer, so the shapes are kept (zeros):
the model still loads with plain transformers and computes exactly what the pruned model computes.

Both return masks {parameter name: 0/1 tensor}; `keep_pruned` zeroes the gradients of pruned weights, so
a fine-tune after pruning keeps them exactly zero (AdamW: zero gradient and zero weight -> zero update).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch

from ftkit.errors import UserError
from ftkit.models import anatomy


def check_sparsity(sparsity: float, key: str = "--sparsity") -> None:
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"{key}: {sparsity} is outside [0, 1); expected the share of weights to remove, e.g. 0.5")


def prunable(model) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of every linear layer inside the transformer layer stack."""
    _, _, stack = anatomy.layer_stack(model)
    inside = {id(m) for m in stack.modules()}
    return [(n, m) for n, m in model.named_modules() if id(m) in inside and anatomy.is_linear(m)]


def magnitude_prune(model, sparsity: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Zero the smallest-magnitude share `sparsity` of the stack's weights (global or per layer); return the masks."""
    from torch.nn.utils import prune

    check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise UserError(f"--scope: '{scope}'; expected global or layer")
    targets = prunable(model)
    if sparsity == 0:
        return {}
    if scope == "global":
        prune.global_unstructured([(m, "weight") for _, m in targets], pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for _, m in targets:
            prune.l1_unstructured(m, "weight", amount=sparsity)
    masks = {}
    for name, m in targets:
        masks[f"{name}.weight"] = m.weight_mask.detach().clone()
        prune.remove(m, "weight")  # permanent: weight = weight_orig * mask, no reparametrisation left
    return masks


# --- attention heads ---------------------------------------------------------------------------------

def attention_parts(layer, config) -> dict:
    """The attention of one layer: its q/k/v projections, its output projection, heads and head size."""
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    att = getattr(layer, "attention", None)
    if att is not None and hasattr(att, "self") and hasattr(att.self, "query"):  # BERT, RoBERTa, ELECTRA, ...
        return {"qkv": [att.self.query, att.self.key, att.self.value], "fused": False, "out": att.output.dense,
                "heads": heads, "head_dim": att.self.query.weight.shape[0] // heads}
    attn = getattr(layer, "attn", None)
    if attn is not None and hasattr(attn, "c_attn"):  # GPT-2: one Conv1D (weight: in x 3*out) for q, k, v
        return {"qkv": [attn.c_attn], "fused": True, "out": attn.c_proj, "heads": heads,
                "head_dim": attn.c_attn.weight.shape[1] // 3 // heads}
    raise UserError(f"--heads: attention-head pruning supports BERT-like and GPT-2 models, not {type(layer).__name__}")


def head_importance(model, batches: Iterable[dict], loss_fn: Callable) -> torch.Tensor:
    """Michel et al. importance, [layers, heads]: |d loss / d gate| summed over batches, L2-normalised per layer."""
    _, _, stack = anatomy.layer_stack(model)
    parts = [attention_parts(layer, model.config) for layer in stack]
    gates = torch.ones(len(parts), parts[0]["heads"], requires_grad=True)
    hooks = []

    def gate_hook(i, p):
        def hook(_module, args):
            x = args[0]
            shape = x.shape
            x = (x.reshape(*shape[:-1], p["heads"], p["head_dim"]) * gates[i].to(x.dtype)[:, None]).reshape(shape)
            return (x, *args[1:])
        return hook

    for i, p in enumerate(parts):
        hooks.append(p["out"].register_forward_pre_hook(gate_hook(i, p)))
    was_training = model.training
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)  # only the gates' gradients are wanted
    model.eval()
    importance = torch.zeros_like(gates)
    try:
        for batch in batches:
            loss = loss_fn(model, batch)
            (g,) = torch.autograd.grad(loss, gates)
            importance += g.abs()
    finally:
        for h in hooks:
            h.remove()
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
        model.train(was_training)
    norm = importance.norm(dim=1, keepdim=True).clamp_min(1e-20)
    return importance / norm


def choose_heads(importance: torch.Tensor, share: float) -> dict[int, list[int]]:
    """The least important `share` of all heads, globally, keeping at least one head in every layer."""
    if not 0.0 < share < 1.0:
        raise UserError(f"--heads: {share} is outside (0, 1); expected the share of attention heads to remove, e.g. 0.25")
    layers, heads = importance.shape
    want = int(round(share * layers * heads))
    chosen: dict[int, list[int]] = {}
    for flat in importance.flatten().argsort().tolist():
        if want == 0:
            break
        layer, head = divmod(flat, heads)
        if len(chosen.get(layer, [])) < heads - 1:
            chosen.setdefault(layer, []).append(head)
            want -= 1
    return {k: sorted(v) for k, v in sorted(chosen.items())}


def prune_heads(model, heads: dict[int, list[int]]) -> dict[str, torch.Tensor]:
    """Zero the chosen heads' q/k/v rows (+ biases) and output-projection columns; return the masks."""
    _, _, stack = anatomy.layer_stack(model)
    names = {id(m): n for n, m in model.named_modules()}
    masks: dict[str, torch.Tensor] = {}

    def mask_for(param_name: str, param: torch.Tensor) -> torch.Tensor:
        return masks.setdefault(param_name, torch.ones_like(param))

    for layer_idx, chosen in heads.items():
        p = attention_parts(stack[layer_idx], model.config)
        d, h_all = p["head_dim"], p["heads"]
        cols = [slice(h * d, (h + 1) * d) for h in chosen]
        for proj in p["qkv"]:
            name = names[id(proj)]
            for block in range(3 if p["fused"] else 1):  # GPT-2's c_attn holds q, k and v one after another
                for c in cols:
                    c = slice(c.start + block * h_all * d, c.stop + block * h_all * d)
                    if p["fused"]:  # Conv1D weight is [in, out]
                        mask_for(f"{name}.weight", proj.weight)[:, c] = 0
                    else:
                        mask_for(f"{name}.weight", proj.weight)[c, :] = 0
                    if proj.bias is not None:
                        mask_for(f"{name}.bias", proj.bias)[c] = 0
        out = p["out"]
        name = names[id(out)]
        for c in cols:
            if p["fused"]:
                mask_for(f"{name}.weight", out.weight)[c, :] = 0
            else:
                mask_for(f"{name}.weight", out.weight)[:, c] = 0
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)
    model.config.pruned_heads = {int(k): v for k, v in heads.items()}  # recorded for the reader; shapes unchanged
    return masks


def merge_masks(*mask_sets: dict) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for masks in mask_sets:
        for n, m in masks.items():
            out[n] = out[n] * m if n in out else m
    return out


def keep_pruned(model, masks: dict[str, torch.Tensor]) -> list:
    """Gradient hooks that zero the pruned entries' gradients (the weights then stay exactly zero under AdamW)."""
    params = dict(model.named_parameters())
    return [params[n].register_hook(lambda g, m=m: g * m.to(g.device, g.dtype)) for n, m in masks.items()]


def sparsity_report(model, masks: Optional[dict] = None) -> dict:
    """Zeros in the pruned layers' weights and in the whole model."""
    targets = [m.weight for _, m in prunable(model)]
    zeros = sum(int((w == 0).sum()) for w in targets)
    size = sum(w.numel() for w in targets)
    all_zero = sum(int((p == 0).sum()) for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {"layer_weight_sparsity": round(zeros / max(size, 1), 4), "model_sparsity": round(all_zero / max(total, 1), 4),
            "pruned_weights": zeros, "layer_weights": size, "parameters": total}
