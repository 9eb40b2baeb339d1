"""GGUF files (llama.cpp's single-file format) as starting points: load, dequantize, make serializable.

transformers reads a GGUF file (`from_pretrained(dir, gguf_file=name)`, with the `gguf` package) and
dequantizes it to fp32, but the result keeps a `quantization_config` and refuses `save_pretrained`
("quantized with gguf and is not serializable"). What transformers lacks, written here: the weights moved
into a model built from the config without it, so that training, saving and adapters treat it like any HF model.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Callable, Optional

from ftkit.errors import UserError
from ftkit.paths import locate_gguf


def load_model(path: str, key: str = "model.from_pretrained", adjust: Optional[Callable] = None):
    """The GGUF file's causal LM, dequantized to fp32, as a plain (serializable) transformers model."""
    from transformers import AutoModelForCausalLM

    f = locate_gguf(path, key)
    folder, name = os.path.dirname(f), os.path.basename(f)
    try:
        with _no_progress_bar():
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        config = copy.deepcopy(loaded.config)  # (reading the file again for its config alone takes seconds)
    except Exception as e:  # e.g. "GGUF model with architecture X is not supported yet"
        raise UserError(f"{key}: transformers cannot dequantize {path}: {str(e).strip().splitlines()[0][:200]}") from None
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    if adjust is not None:  # the recipe's config overrides (dropout, ...) before the model is built
        adjust(config)
    model = AutoModelForCausalLM.from_config(config)
    state = loaded.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight") and getattr(config, "tie_word_embeddings", False)}
    if set(missing) - tied or unexpected:
        raise UserError(f"{key}: {path}: its weights do not match its config (missing {sorted(set(missing) - tied)[:3]}, "
                        f"unexpected {unexpected[:3]})")
    model.tie_weights()
    model.name_or_path = f  # what peft records as an adapter's base model
    model.config._name_or_path = f
    model.generation_config = loaded.generation_config
    return model


@contextlib.contextmanager
def _no_progress_bar():
    """transformers' GGUF reader draws a tqdm bar unconditionally (not through its progress-bar switch): ftkit's
    logs are lines, so the bar is turned off for the load."""
    from functools import partial

    from transformers import modeling_gguf_pytorch_utils as reader

    original = reader.tqdm
    reader.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        reader.tqdm = original
