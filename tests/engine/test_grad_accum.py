"""k micro-batches of b give the same gradient as one batch of k*b, even when they hold different numbers of targets."""

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.accel import make_accelerator
from ftkit.engine.loop import accumulate_gradients


class MaskedTokens:
    """A task whose targets per batch vary (like masked LM): only tokens with loss_mask == 1 count."""

    def count_targets(self, batch):
        return int(batch["loss_mask"].sum())

    def loss(self, model, batch):
        logits = model(input_ids=batch["input_ids"]).logits
        per_token = F.cross_entropy(logits.flatten(0, 1).float(), batch["input_ids"].flatten(), reduction="none")
        return (per_token * batch["loss_mask"].flatten()).sum()


def tiny_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    return GPT2LMHeadModel(cfg)


def grads(model, micro):
    acc = make_accelerator("fp32")
    model.zero_grad()
    loss, n = accumulate_gradients(acc, model, MaskedTokens(), micro)
    return loss.item() / n, {k: p.grad.clone() for k, p in model.named_parameters()}


def test_accumulated_equals_one_big_batch():
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(0, 50, size=(6, 16)))
    mask = torch.from_numpy((rng.random((6, 16)) < np.linspace(0.15, 0.9, 6)[:, None]).astype(np.float32))
    assert len({int(m.sum()) for m in mask}) > 3  # very different target counts per row
    model = tiny_model()
    whole = [{"input_ids": ids, "loss_mask": mask}]
    parts = [{"input_ids": ids[i:j], "loss_mask": mask[i:j]} for i, j in ((0, 1), (1, 4), (4, 6))]
    loss_a, g_a = grads(model, whole)
    loss_b, g_b = grads(model, parts)
    assert abs(loss_a - loss_b) < 1e-5
    for k in g_a:
        torch.testing.assert_close(g_a[k], g_b[k], rtol=1e-4, atol=1e-6)
    # the naive mean of per-micro-batch means is measurably different: this test can fail
    naive = sum(float(MaskedTokens().loss(model, p)) / MaskedTokens().count_targets(p) for p in parts) / len(parts)
    assert abs(naive - loss_a) > 1e-3
