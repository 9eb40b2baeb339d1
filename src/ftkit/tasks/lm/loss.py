"""Next-token cross-entropy fused with the output layer: the (tokens x vocabulary) logits are never held whole.

Why by hand: the plain path (`model(...).logits` -> `.float()` -> `F.cross_entropy`) writes the full logits in
the autocast dtype, copies them to fp32, and its backward fills a zero tensor of that size, scatters into it and
runs log-softmax's backward over it: with vocabulary 8,000 and 2,048 tokens per step those passes over 64 MB took
~30 % of a GPT step on a 2-core CPU (bench/probes/profile_step.py), more than every matmul of the output layer. Here
the output layer and the loss run together over chunks of rows, and the gradient (softmax - one-hot) is formed
in the forward pass, chunk by chunk, where the logits already are: backward only scales two stored gradients.
transformers and torch have no such function (Liger-Kernel's is CUDA/Triton only).

Numerics follow the plain path under autocast: logits from a matmul in the autocast dtype, softmax in fp32, the
gradient cast to the autocast dtype for its two matmuls, then accumulated in fp32. The autocast dtype is the one in
force inside the model's forward (where the output layer would have run: accelerate applies autocast around
`model.forward` only, and the loss runs after it), recorded by the hook.

`HiddenStates` reaches the output layer's input through the model's own forward (DDP and autocast wrappers see
an ordinary call): a forward pre-hook keeps the hidden states and hands the output layer zero rows, so the model
computes no logits at all. Only for model types whose logits are exactly `lm_head(hidden)` (no soft-capping,
scaling or bias): FUSED_TYPES, each checked against the plain loss in tests/lm/test_lm_loss.py.
"""

from __future__ import annotations

from typing import Optional

import torch

from ftkit.tasks.encoders.masking import IGNORE

FUSED_TYPES = {"gpt2", "llama", "mistral", "qwen2", "qwen3"}
# Rows of logits alive at once. CPU: ~2M fp32 values (8 MB, cache-sized pieces); measured on the bench GPT (vocab
# 8,000, 2,040 rows, bf16, 2 cores), best of 20 fwd+bwd: 128 rows 232 ms, 256: 215, 512: 229, 1024: 240, 2048: 250;
# the plain path 316. GPUs want large matmuls and few passes over the V x d weight gradient: ~64M values (256 MB;
# 1,280 rows at GPT-2's vocabulary), not measured here (no GPU lent).
CPU_CHUNK_VALUES, GPU_CHUNK_VALUES = 2 ** 21, 2 ** 26


def chunk_rows(vocab: int, device_type: str = "cpu") -> int:
    values = CPU_CHUNK_VALUES if device_type == "cpu" else GPU_CHUNK_VALUES
    return max(128, (values // max(vocab, 1)) // 64 * 64)


def autocast_dtype(device_type: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype autocast gives a matmul here and now (else `dtype`)."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else dtype


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, rows, dtype, grad_enabled):
        # needs_input_grad follows requires_grad, not grad mode: under no_grad (evaluation) no gradient is formed
        needs_h, needs_w = grad_enabled and ctx.needs_input_grad[0], grad_enabled and ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype  # the parameter's gradient comes back in its own dtype
        w = weight.to(dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if needs_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if needs_w else None
        partial = bool((targets == IGNORE).any())  # rows without a target (padding, prompts) need a mask
        for s in range(0, hidden.shape[0], rows):
            h, t = hidden[s:s + rows].to(dtype), targets[s:s + rows]
            keep = t != IGNORE
            tt = torch.where(keep, t, 0) if partial else t
            # log-softmax in fp32 straight from the matmul's output (one fused pass, no separate fp32 copy)
            logp = torch.log_softmax(h @ w.t(), dim=-1, dtype=torch.float32)
            picked = logp.gather(1, tt[:, None]).squeeze(1)
            total -= (picked * keep).sum() if partial else picked.sum()
            if not (needs_h or needs_w):
                continue
            g = logp.exp_()  # softmax, in place
            g[torch.arange(len(tt), device=g.device), tt] -= 1.0
            if partial:
                g.mul_(keep[:, None])
            g = g.to(dtype)
            if needs_h:
                grad_h[s:s + rows] = g @ w
            if needs_w:
                grad_w += (g.t() @ h).float()
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_total.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_total).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         rows: Optional[int] = None, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """sum over rows with target != -100 of cross_entropy(hidden @ weight.T, target); hidden (N, d), weight (V, d).
    `dtype`: of the matmuls (default: what autocast gives here, else hidden's)."""
    if hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"linear_cross_entropy: {hidden.shape[0]} rows of hidden states for {targets.shape[0]} targets")
    device = hidden.device.type
    dtype = dtype or autocast_dtype(device, hidden.dtype)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, targets, rows or chunk_rows(weight.shape[0], device), dtype,
                                         torch.is_grad_enabled())


class HiddenStates:
    """Calls a causal LM so that it returns no logits, and keeps what its output layer would have read."""

    def __init__(self):
        self.kept: Optional[torch.Tensor] = None
        self.dtype: Optional[torch.dtype] = None  # the matmul dtype in force where the output layer would run
        self.active = False

    @staticmethod
    def output_layer(model) -> Optional[torch.nn.Linear]:
        inner = getattr(model, "module", model)  # DDP wraps the model
        if getattr(getattr(inner, "config", None), "model_type", None) not in FUSED_TYPES:
            return None
        layer = inner.get_output_embeddings()
        # exactly nn.Linear without bias: a LoRA-wrapped or biased head takes the plain path; so does a sharded
        # weight (FSDP2's DTensor, DeepSpeed ZeRO-3's partitions): it is whole only inside the layer's own call
        if type(layer) is not torch.nn.Linear or layer.bias is not None:
            return None
        sharded = type(layer.weight).__name__ == "DTensor" or hasattr(layer.weight, "ds_id")
        return None if sharded else layer

    def attach(self, model) -> Optional[torch.nn.Linear]:
        layer = self.output_layer(model)
        if layer is None:
            return None
        hooks = layer.__dict__.setdefault("_ftkit_hidden_hooks", set())
        if id(self) not in hooks:
            layer.register_forward_pre_hook(self._keep)
            hooks.add(id(self))
        return layer

    def _keep(self, _module, args):
        if not self.active:
            return None
        self.kept = args[0]
        self.dtype = autocast_dtype(args[0].device.type, args[0].dtype)
        return (args[0][..., :0, :],) + tuple(args[1:])  # zero positions: the model computes no logits

    def __call__(self, model, layer: torch.nn.Linear, **inputs) -> tuple[torch.Tensor, torch.dtype]:
        """(the output layer's input, the dtype its matmul would have run in)."""
        self.active = True
        try:
            model(**inputs)
            return self.kept, self.dtype
        finally:
            self.active, self.kept, self.dtype = False, None, None
