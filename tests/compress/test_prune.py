"""Pruning: exact sparsity (global and per layer) that survives save -> plain transformers load; head pruning
equals switching those heads off; masked gradients keep pruned weights at zero through AdamW steps."""

import pytest
import torch
import torch.nn.functional as F

from ftkit.compress import prune as p
from ftkit.errors import UserError

from tiny_models import HEADS, LAYERS, tiny_bert_classifier, tiny_gpt


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_pruning_hits_the_target_and_loads_with_transformers(tmp_path, scope):
    from transformers import AutoModelForSequenceClassification

    model = tiny_bert_classifier()
    masks = p.magnitude_prune(model, 0.5, scope)
    report = p.sparsity_report(model)
    assert report["layer_weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    per_tensor = [float((m == 0).float().mean()) for m in masks.values()]
    if scope == "layer":
        assert all(abs(s - 0.5) < 1e-3 for s in per_tensor)
    assert not any("weight_orig" in n for n, _ in model.named_parameters())  # made permanent
    assert model.bert.embeddings.word_embeddings.weight[1:].ne(0).all()  # embeddings stay dense (row 0: padding)
    model.save_pretrained(str(tmp_path))
    again = AutoModelForSequenceClassification.from_pretrained(str(tmp_path))
    assert p.sparsity_report(again)["pruned_weights"] == report["pruned_weights"]


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_sparsity_outside_range(bad):
    with pytest.raises(UserError, match=r"outside \[0, 1\)"):
        p.magnitude_prune(tiny_bert_classifier(), bad)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_head_pruning_equals_switching_heads_off(family):
    model = (tiny_bert_classifier() if family == "bert" else tiny_gpt()).eval()
    ids = torch.randint(1, 64, (4, 10))
    labels = torch.tensor([0, 1, 0, 1])

    def loss(m, b):
        out = m(input_ids=b["input_ids"]).logits
        if family == "bert":
            return F.cross_entropy(out, b["labels"], reduction="sum")
        return F.cross_entropy(out[:, :-1].reshape(-1, out.size(-1)), b["input_ids"][:, 1:].reshape(-1), reduction="sum")

    imp = p.head_importance(model, [{"input_ids": ids, "labels": labels}], loss)
    assert imp.shape == (LAYERS, HEADS) and torch.allclose(imp.norm(dim=1), torch.ones(LAYERS))
    chosen = p.choose_heads(imp, 0.5)
    assert sum(map(len, chosen.values())) == LAYERS * HEADS // 2 and all(len(v) < HEADS for v in chosen.values())
    least = int(imp.flatten().argmin())
    assert least % HEADS in chosen[least // HEADS]
    # reference: the unpruned model with those heads' outputs multiplied by 0 (the gate of the importance score)
    from ftkit.models.anatomy import layer_stack

    _, _, stack = layer_stack(model)
    hooks = []
    for layer, heads in chosen.items():
        parts = p.attention_parts(stack[layer], model.config)

        def off(_m, args, heads=heads, d=parts["head_dim"]):
            x = args[0].clone()
            for h in heads:
                x[..., h * d:(h + 1) * d] = 0
            return (x, *args[1:])
        hooks.append(parts["out"].register_forward_pre_hook(off))
    want = model(input_ids=ids).logits
    for h in hooks:
        h.remove()
    masks = p.prune_heads(model, chosen)
    assert torch.allclose(model(input_ids=ids).logits, want, atol=1e-5)
    assert model.config.pruned_heads == chosen and all((m == 0).any() for m in masks.values())


def test_masked_gradients_keep_pruned_weights_zero():
    model = tiny_bert_classifier().train()
    masks = p.magnitude_prune(model, 0.6)
    p.keep_pruned(model, masks)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    ids = torch.randint(1, 64, (4, 10))
    for _ in range(3):
        F.cross_entropy(model(input_ids=ids).logits, torch.tensor([0, 1, 0, 1])).backward()
        opt.step()
        opt.zero_grad()
    params = dict(model.named_parameters())
    for name, m in masks.items():
        assert params[name][m == 0].abs().max() == 0 and params[name][m == 1].ne(0).all()
    assert p.sparsity_report(model)["layer_weight_sparsity"] == pytest.approx(0.6, abs=1e-3)
