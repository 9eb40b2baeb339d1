"""A transformers Llama-family causal LM written as a GGUF file (llama.cpp's single-file format), with the `gguf`
package's writer, tensor-name map and quantizer (no llama.cpp build).

What the package lacks and llama.cpp's converter does in its own script, written here:
- the hyper-parameters as llama.cpp's `llama` architecture reads them (from the transformers config);
- the rows of the query and key projections reordered: transformers rotates the two halves of each head
  (rotate_half), llama.cpp rotates adjacent pairs (the original Meta layout), so each head's rows are interleaved
  back (transformers' GGUF reader undoes exactly this when it loads a file);
- the tensor types of llama.cpp's `--outtype`: 1-D tensors (norms) stay F32; q8_0 falls back to F16 for a matrix
  whose rows are not a multiple of Q8_0's 32-value block;
- a tied output layer is not written (llama.cpp reuses token_embd, and transformers reads "no output.weight" as tied).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ftkit.errors import UserError

# --type -> (llama.cpp's file type, the type of its 2-D tensors)
TYPES = {"f16": ("MOSTLY_F16", "F16"), "q8_0": ("MOSTLY_Q8_0", "Q8_0")}


@dataclass
class Written:
    tensors: int = 0
    types: dict = field(default_factory=dict)  # GGML type name -> tensors of that type
    seconds: float = 0.0


def check_llama(config, key: str = "--model", arch: str = "") -> None:
    """One line when the model is not one this exporter writes exactly: a decoder-only Llama with plain RoPE.
    `arch`: the model's class name (a model built from a config has no `architectures` yet)."""
    arch = arch or (getattr(config, "architectures", None) or ["?"])[0]
    if getattr(config, "is_encoder_decoder", False):
        raise UserError(f"{key}: {arch} is an encoder-decoder model; GGUF export writes decoder-only Llama-family "
                        f"causal LMs (model_type llama, e.g. SmolLM2)")
    if config.model_type != "llama":
        encoder = not arch.endswith(("ForCausalLM", "LMHeadModel")) and not getattr(config, "is_decoder", False)
        what = f"an encoder ({arch})" if encoder else f"model_type {config.model_type} ({arch})"
        raise UserError(f"{key}: {what} cannot be exported to GGUF here; GGUF export writes decoder-only Llama-family "
                        f"causal LMs (model_type llama, e.g. SmolLM2)")
    if not arch.endswith("ForCausalLM"):
        raise UserError(f"{key}: {arch} is a Llama body without a language-model head; GGUF export writes "
                        f"LlamaForCausalLM models")
    rope = dict(getattr(config, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
        raise UserError(f"{key}: RoPE scaling '{rope['rope_type']}' is not written by ftkit's GGUF export (plain RoPE only)")
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(config, flag, False):
            raise UserError(f"{key}: {flag}: true (projection biases) is not written by ftkit's GGUF export")


def interleave_rope_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection from transformers' half-split RoPE layout to llama.cpp's adjacent-pair layout."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _hparams(w, config, file_type) -> None:
    import gguf

    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    w.add_rope_dimension_count(_head_dim(config))
    if _head_dim(config) != config.hidden_size // config.num_attention_heads:
        w.add_key_length(_head_dim(config))
        w.add_value_length(_head_dim(config))
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    rope = dict(getattr(config, "rope_parameters", None) or {})
    w.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    w.add_vocab_size(config.vocab_size)
    w.add_file_type(getattr(gguf.LlamaFileType, file_type))
    if file_type != "MOSTLY_F16":
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _tensor(name: str, data: np.ndarray, matrix_type: str):
    """(array, GGML type) for one tensor, as llama.cpp's converter stores it for the file type."""
    from gguf import GGMLQuantizationType, quants

    if data.ndim < 2:
        return data.astype(np.float32), GGMLQuantizationType.F32
    qtype = getattr(GGMLQuantizationType, matrix_type)
    if qtype == GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
        qtype = GGMLQuantizationType.F16  # Q8_0 quantizes rows in blocks of 32
    return quants.quantize(data.astype(np.float32), qtype), qtype


def write(model, path: str, type_name: str, metadata) -> Written:
    """Write `model` (LlamaForCausalLM, full precision) to `path`; `metadata(writer)` adds the tokenizer, names and
    sampling defaults. Every tensor is converted in memory first, then the file is written in one go."""
    import gguf

    config = model.config
    check_llama(config, arch=type(model).__name__)
    if type_name not in TYPES:
        raise UserError(f"--type: '{type_name}' is not a GGUF type this export writes; expected one of {', '.join(TYPES)}")
    file_type, matrix_type = TYPES[type_name]
    t0 = time.perf_counter()
    arch = gguf.MODEL_ARCH.LLAMA
    w = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    _hparams(w, config, file_type)
    metadata(w)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    out = Written()
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise UserError(f"--model: tensor {name} has no name in llama.cpp's Llama layout; not a plain LlamaForCausalLM")
        data = t.detach().float().cpu().numpy()
        if name.endswith("q_proj.weight"):
            data = interleave_rope_rows(data, heads)
        elif name.endswith("k_proj.weight"):
            data = interleave_rope_rows(data, kv_heads)
        array, qtype = _tensor(name, data, matrix_type)
        w.add_tensor(target, array, raw_dtype=qtype if qtype not in (gguf.GGMLQuantizationType.F32,
                                                                    gguf.GGMLQuantizationType.F16) else None)
        out.tensors += 1
        out.types[qtype.name] = out.types.get(qtype.name, 0) + 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out.seconds = time.perf_counter() - t0
    return out
