"""Post-training dynamic int8 quantization of the Linear layers, for CPU inference, and its safetensors format.

`torch.ao.quantization.quantize_dynamic` stores each weight as int8 with one scale per output row
(per-channel, symmetric) and quantizes activations on the fly. There is no format other tools load for
such a model (transformers' own int8 paths need bitsandbytes/GPU or torchao; a pickled module is unsafe),
so ftkit writes:

  config.json               the fp32 model's config (architecture, classes)
  model.int8.safetensors    every quantized Linear as `<name>.weight_int8` (int8), `<name>.weight_scale`
                            (float64, one per row), `<name>.bias` (fp32); all other weights in fp32
  quantization.json         {"format": "ftkit-dynamic-int8", "modules": [...], "conv1d_as_linear": bool, ...}

and `load_quantized` rebuilds it: the model from its config, the same layers quantized, then the stored
integers and scales put back (safetensors only, no pickle). GPT-2's Conv1D layers are Linear layers with
a transposed weight; they are converted to nn.Linear first so that they are quantized too.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch

from ftkit.errors import UserError
from ftkit.models.build import auto_class
from ftkit.task_entry import TaskEntry

FILE = "model.int8.safetensors"
INFO = "quantization.json"
FORMAT = "ftkit-dynamic-int8"


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao on every call
        warnings.simplefilter("ignore")
        yield


def check_backend() -> str:
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        raise UserError("quantize: this torch build has no quantized CPU backend (fbgemm / x86 / qnnpack); "
                        "dynamic int8 quantization needs one")
    if torch.backends.quantized.engine == "none":
        torch.backends.quantized.engine = engines[0]
    return torch.backends.quantized.engine


def conv1d_to_linear(model) -> int:
    """Replace every transformers Conv1D (GPT-2) by the equivalent nn.Linear, in place; return how many."""
    from transformers.pytorch_utils import Conv1D

    n = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            nx, nf = module.weight.shape
            lin = torch.nn.Linear(nx, nf)
            with torch.no_grad():
                lin.weight.copy_(module.weight.t())
                lin.bias.copy_(module.bias)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, lin)
            n += 1
    return n


def _dynamic_quantize(model):
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with _quiet():
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def quantized_modules(model) -> dict[str, torch.nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, QLinear)}


def quantize(model):
    """(int8 model, converted Conv1D count); the fp32 model is modified (Conv1D -> Linear) and consumed."""
    check_backend()
    if quantized_modules(model):
        raise UserError("quantize: the model is already quantized")
    converted = conv1d_to_linear(model)
    if not any(isinstance(m, torch.nn.Linear) for m in model.modules()):
        raise UserError(f"quantize: {type(model).__name__} has no Linear layers; dynamic int8 quantization has nothing to quantize")
    qmodel = _dynamic_quantize(model.eval())
    if not quantized_modules(qmodel):
        raise UserError(f"quantize: the {torch.backends.quantized.engine} backend quantized none of "
                        f"{type(model).__name__}'s Linear layers")
    return qmodel, converted


def int8_state(qmodel) -> dict[str, torch.Tensor]:
    """Plain tensors only: int8 weights and their scales for the quantized layers, fp32 for everything else."""
    qmods = quantized_modules(qmodel)
    out: dict[str, torch.Tensor] = {}
    for name, m in qmods.items():
        with _quiet():
            w, b = m._packed_params._weight_bias()
        if w.qscheme() not in (torch.per_channel_affine, torch.per_channel_symmetric):
            raise UserError(f"quantize: {name} was quantized per tensor; expected per channel")
        if w.q_per_channel_zero_points().abs().sum() != 0:
            raise UserError(f"quantize: {name} has non-zero zero points; expected symmetric quantization")
        out[f"{name}.weight_int8"] = w.int_repr().contiguous()
        out[f"{name}.weight_scale"] = w.q_per_channel_scales().contiguous()
        if b is not None:
            out[f"{name}.bias"] = b.detach().contiguous()
    prefixes = tuple(f"{n}." for n in qmods)
    for k, v in qmodel.state_dict().items():
        if isinstance(v, torch.Tensor) and not v.is_quantized and not k.startswith(prefixes):
            out[k] = v.detach().clone().contiguous()  # clone: tied weights would be one shared tensor
    return out


def save_quantized(qmodel, path: Path, task: str, converted: int) -> None:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    qmodel.config.save_pretrained(str(path))
    save_file(int8_state(qmodel), str(path / FILE), metadata={"format": FORMAT})
    info = {"format": FORMAT, "version": 1, "task": task, "dtype": "qint8", "scheme": "per_channel_symmetric",
            "conv1d_as_linear": bool(converted), "modules": sorted(quantized_modules(qmodel)),
            "torch": torch.__version__, "loader": "ftkit.models.int8.load_quantized(path, ftkit.registry.entry(task))"}
    (path / INFO).write_text(json.dumps(info, indent=2) + "\n")


def load_quantized(path: str, entry: TaskEntry, key: str = "--model"):
    """Rebuild an int8 model saved by `save_quantized` (the quantized engine of this machine runs it)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    check_backend()
    info = json.loads(Path(path, INFO).read_text())
    if info.get("format") != FORMAT:
        raise UserError(f"{key}: {path}/{INFO} is not an ftkit int8 model (format {info.get('format')!r})")
    config = AutoConfig.from_pretrained(path)
    model = auto_class(entry).from_config(config)
    if info.get("conv1d_as_linear"):
        conv1d_to_linear(model)
    try:
        state = load_file(str(Path(path, FILE)))
    except Exception as e:
        raise UserError(f"{key}: could not read {Path(path, FILE)}: {str(e).splitlines()[0][:200]}") from None
    modules = info["modules"]
    prefixes = tuple(f"{n}." for n in modules)
    plain = {k: v for k, v in state.items() if not k.startswith(prefixes)}
    # fp32 weights first (a quantized layer's state_dict wants its packed form), then quantize, then the int8 layers
    missing, unexpected = model.load_state_dict(plain, strict=False)
    missing = [k for k in missing if not k.startswith(prefixes)]
    if missing or unexpected:
        raise UserError(f"{key}: {path} does not fit its config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    qmodel = _dynamic_quantize(model.eval())
    qmods = quantized_modules(qmodel)
    if sorted(qmods) != modules:
        raise UserError(f"{key}: {path} does not fit its config: the quantized layers differ")
    with _quiet(), torch.no_grad():
        for name, m in qmods.items():
            ints, scales = state[f"{name}.weight_int8"], state[f"{name}.weight_scale"]
            w = torch._make_per_channel_quantized_tensor(ints, scales.double(), torch.zeros_like(scales, dtype=torch.long), 0)
            m.set_weight_bias(w, state.get(f"{name}.bias"))
    return qmodel


def linear_weight_bytes(model) -> int:
    """Bytes of the Linear layers' weights (fp32: 4 per value; int8: 1 per value + an 8-byte scale per row)."""
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
        elif type(m).__name__ == "Conv1D":
            total += m.weight.numel() * m.weight.element_size()
    for m in quantized_modules(model).values():
        with _quiet():
            w, _ = m._packed_params._weight_bias()
        total += w.numel() + 8 * w.shape[0]
    return total
