"""int8 dynamic quantization: the saved format (safetensors, no pickle) reloads to the very same model,
stays close to fp32, is about 4x smaller in its Linear weights; GPT-2's Conv1D layers are quantized too."""

import json

import pytest
import torch

from ftkit import registry
from ftkit.errors import UserError
from ftkit.models import int8 as q

from tiny_models import tiny_bert_classifier, tiny_gpt


@pytest.mark.parametrize("task", ["cls", "clm"])
def test_int8_round_trip(tmp_path, task):
    model = (tiny_bert_classifier() if task == "cls" else tiny_gpt()).eval()
    ids = torch.randint(1, 64, (3, 16))
    want = model(input_ids=ids).logits
    fp32_linear = q.linear_weight_bytes(model)
    qmodel, converted = q.quantize(model)
    assert converted == (0 if task == "cls" else 2 * 4)  # GPT-2, per layer: attn c_attn, c_proj; mlp c_fc, c_proj
    got = qmodel(input_ids=ids).logits
    assert (got - want).abs().max() < 0.05 * want.abs().max()  # int8 is close, not equal
    assert fp32_linear / q.linear_weight_bytes(qmodel) > 3.0
    q.save_quantized(qmodel, tmp_path, task, converted)
    info = json.loads((tmp_path / q.INFO).read_text())
    assert info["format"] == q.FORMAT and len(info["modules"]) == len(q.quantized_modules(qmodel))
    from safetensors import safe_open

    with safe_open(str(tmp_path / q.FILE), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert {dtypes[k] for k in dtypes if k.endswith("weight_int8")} == {"I8"}
    again = q.load_quantized(str(tmp_path), registry.entry(task))
    assert torch.equal(again(input_ids=ids).logits, got)  # exactly the saved model


def test_already_quantized_is_refused():
    qmodel, _ = q.quantize(tiny_bert_classifier())
    with pytest.raises(UserError, match="already quantized"):
        q.quantize(qmodel)


def test_model_without_linear_layers_is_refused():
    class Embedder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)

    with pytest.raises(UserError, match="no Linear layers"):
        q.quantize(Embedder())
