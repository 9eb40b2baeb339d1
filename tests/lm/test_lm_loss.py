"""The fused output-layer + cross-entropy (tasks/lm/loss.py) against the plain path, and the CPU fast paths
(models/fast_paths.py) against the functions they replace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftkit.models import fast_paths
from ftkit.tasks.lm.clm import CausalLM
from ftkit.tasks.lm.loss import IGNORE, HiddenStates, linear_cross_entropy


def tiny_lm(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"gpt2": dict(n_layer=2, n_embd=32, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)}
    common = dict(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=64, head_dim=8)
    cfg = AutoConfig.for_model(model_type, vocab_size=97, **extra.get(model_type, common))
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg)


def loss_and_grads(model, task, ids, autocast: bool):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = task.loss(model, {"input_ids": ids})
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("model_type", sorted({"gpt2", "llama", "mistral", "qwen2", "qwen3"}))
def test_fused_loss_equals_the_plain_loss_for_every_fused_model_type(model_type):
    model = tiny_lm(model_type)
    assert HiddenStates.output_layer(model) is not None, f"{model_type} should take the fused path"
    ids = torch.randint(0, 97, (3, 20), generator=torch.Generator().manual_seed(1))
    plain_loss, plain_grads = loss_and_grads(model, CausalLM(fused=False), ids, autocast=False)
    fused_loss, fused_grads = loss_and_grads(model, CausalLM(), ids, autocast=False)
    assert torch.allclose(fused_loss, plain_loss, rtol=1e-5)
    assert float((fused_grads - plain_grads).norm() / plain_grads.norm()) < 1e-5
    # bf16 autocast: both paths round alike; each is as close to the fp32 gradient as the other
    _, plain16 = loss_and_grads(model, CausalLM(fused=False), ids, autocast=True)
    _, fused16 = loss_and_grads(model, CausalLM(), ids, autocast=True)
    err = lambda g: float((g - plain_grads).norm() / plain_grads.norm())  # noqa: E731
    assert err(fused16) < 1.5 * err(plain16) + 1e-3


def test_under_accelerate_the_fused_matmuls_run_in_the_autocast_dtype_of_the_forward():
    """accelerate wraps only model.forward in autocast; the loss runs after it. The output layer's matmul must still
    run in bf16 (as it would inside the forward), and the loss must equal the plain path's under the same wrapping."""
    from ftkit.tasks.lm import loss as lm_loss

    model = tiny_lm("llama")
    # what accelerate.prepare does under mixed precision (an Accelerator here would fix the process's state)
    model.forward = torch.autocast("cpu", dtype=torch.bfloat16)(model.forward)
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(3))
    seen = []
    real = lm_loss._LinearCrossEntropy.apply
    lm_loss._LinearCrossEntropy.apply = lambda *a: seen.append(a[4]) or real(*a)
    try:
        fused = CausalLM().loss(model, {"input_ids": ids})
    finally:
        lm_loss._LinearCrossEntropy.apply = real
    assert not torch.is_autocast_enabled("cpu") and seen == [torch.bfloat16]
    plain = CausalLM(fused=False).loss(model, {"input_ids": ids})
    assert torch.allclose(fused, plain, rtol=2e-3)


def test_fused_loss_refuses_rows_that_do_not_match_the_targets_and_skips_gradients_under_no_grad():
    hidden = torch.randn(10, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    with pytest.raises(ValueError, match="10 rows of hidden states for 9 targets"):
        linear_cross_entropy(hidden, weight, torch.zeros(9, dtype=torch.long))
    from ftkit.tasks.lm import loss as lm_loss

    formed = []
    real = lm_loss.torch.Tensor.exp_
    lm_loss.torch.Tensor.exp_ = lambda self: formed.append(1) or real(self)  # the gradient starts with exp_
    try:
        with torch.no_grad():
            linear_cross_entropy(hidden, weight, torch.zeros(10, dtype=torch.long))
    finally:
        lm_loss.torch.Tensor.exp_ = real
    assert formed == []


def test_prompt_tuning_scores_the_input_positions_not_the_virtual_tokens():
    """peft's prompt tuning puts virtual tokens in front: both paths score the last positions, as without it."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    base = tiny_lm("gpt2")
    model = get_peft_model(base, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4))
    ids = torch.randint(0, 97, (2, 10))
    fused, plain = CausalLM().loss(model, {"input_ids": ids}), CausalLM(fused=False).loss(model, {"input_ids": ids})
    assert torch.allclose(fused, plain, rtol=1e-5)


def test_fused_loss_ignores_targets_marked_ignore_and_works_in_chunks():
    torch.manual_seed(0)
    hidden = torch.randn(37, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (37,))
    targets[[0, 5, 36]] = IGNORE
    ref = nn.functional.cross_entropy(hidden @ weight.t(), targets, reduction="sum", ignore_index=IGNORE)
    gh, gw = torch.autograd.grad(ref, [hidden, weight])
    for rows in (4, 7, 64):  # chunks that do and do not divide the rows
        out = linear_cross_entropy(hidden, weight, targets, rows=rows)
        fh, fw = torch.autograd.grad(out * 2.0, [hidden, weight])  # the upstream gradient scales both
        assert torch.allclose(out, ref, rtol=1e-5)
        assert torch.allclose(fh, 2 * gh, atol=1e-5) and torch.allclose(fw, 2 * gw, atol=1e-5)
    with torch.no_grad():  # evaluation: the loss alone
        assert torch.allclose(linear_cross_entropy(hidden, weight, targets), ref, rtol=1e-5)


def test_models_outside_the_fused_types_take_the_plain_path():
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("gpt_neox", vocab_size=97, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                               intermediate_size=64)
    assert HiddenStates.output_layer(AutoModelForCausalLM.from_config(cfg)) is None
    ids = torch.randint(0, 97, (2, 10))
    loss = CausalLM().loss(AutoModelForCausalLM.from_config(cfg), {"input_ids": ids})
    assert torch.isfinite(loss) and loss.item() > 0


def test_fast_dropout_drops_the_expected_share_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    for p in (0.1, 0.2, 0.5):
        y = fast_paths.FastDropout(p)(x)
        assert abs(float((y == 0).float().mean()) - p) < 0.003
        assert abs(float(y.mean()) - 1.0) < 0.01
        kept = torch.unique(y)
        assert len(kept) == 2 and kept[0] == 0.0 and kept[1].item() == pytest.approx(1 / (1 - p))
    d = fast_paths.FastDropout(0.3).eval()
    assert torch.equal(d(x), x)  # evaluation: identity
    torch.manual_seed(5)
    a = fast_paths.FastDropout(0.3)(x)
    torch.manual_seed(5)
    assert torch.equal(fast_paths.FastDropout(0.3)(x), a)  # deterministic under torch's seed


def test_the_attention_math_path_equals_sdpa_for_grouped_query_attention_and_bf16():
    """Llama with 4 query heads on 2 key/value heads (repeat_kv), causal, in bf16 where the math path is taken
    without dropout (short sequences), and with a padding mask."""
    model = tiny_lm("llama").eval()
    ids = torch.randint(0, 97, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, :5] = 0  # left padding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = [model(ids).logits.float(), model(ids, attention_mask=mask).logits.float()]
    assert fast_paths.use_fast_paths(model)["attention"]
    model.train()  # training, no dropout: the math path (bf16, 16 keys)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        after = [model(ids).logits.float(), model(ids, attention_mask=mask).logits.float()]
    assert torch.allclose(after[0], before[0], atol=0.05)
    keep = mask.bool()
    assert torch.allclose(after[1][keep], before[1][keep], atol=0.05)


def test_fast_paths_keep_what_the_model_computes_and_what_it_saves(tmp_path):
    from transformers import AutoModelForCausalLM, BertConfig, BertForSequenceClassification

    gpt = tiny_lm("gpt2")
    ids = torch.randint(0, 97, (2, 16))
    gpt.eval()
    before = gpt(ids).logits
    switched = fast_paths.use_fast_paths(gpt)
    assert switched["attention"] and switched["gelu"] == 2 and switched["dropout"] > 0
    assert torch.allclose(gpt(ids).logits, before, atol=1e-5)
    gpt.train()  # training: the math path (dropout set vanishingly small) computes the same attention
    for m in gpt.modules():
        if isinstance(m, nn.Dropout):
            m.p = 1e-12
    assert torch.allclose(gpt(ids).logits, before, atol=1e-5)
    gpt.save_pretrained(tmp_path / "gpt")
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "gpt").config._attn_implementation == "sdpa"

    bert = BertForSequenceClassification(BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=4, intermediate_size=64))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0  # padding: the mask reaches the math path
    bert.eval()
    before = bert(ids, attention_mask=mask).logits
    fast_paths.use_fast_paths(bert)
    bert.train()
    for m in bert.modules():
        if isinstance(m, nn.Dropout):
            m.p = 1e-12
    assert torch.allclose(bert(ids, attention_mask=mask).logits, before, atol=1e-5)
