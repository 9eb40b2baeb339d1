"""Load any model directory ftkit writes: a plain `save_pretrained` model, a PEFT adapter, or an int8 model.

- plain: config.json + model.safetensors (transformers loads it as is);
- adapter (finetune.strategy lora / prefix / prompt): adapter_config.json + adapter_model.safetensors +
  base_config.json; the base model named in adapter_config.json (`base_model_name_or_path`) is rebuilt
  with base_config.json (class names, head size) and wrapped with `PeftModel.from_pretrained`;
- int8 (`ftkit compress quantize`): config.json + model.int8.safetensors + quantization.json; see
  models/int8.py (no pickle anywhere: safetensors only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import yaml

from ftkit.errors import UserError
from ftkit.models import gguf
from ftkit.models.build import auto_class, check_model_path, count_parameters, load_saved
from ftkit.models.classifier import _quiet_transformers
from ftkit.models.int8 import INFO as INT8_INFO
from ftkit.models.int8 import load_quantized
from ftkit.models.strategy import (  # what save_weights writes next to an adapter
    BASE_CONFIG,
    BASE_LOCATION,
    accept_prefix_cache,
    is_peft,
)
from ftkit.paths import is_gguf, resolve_package_path
from ftkit.task_entry import TaskEntry

ADAPTER_CONFIG = "adapter_config.json"


def kind(path: str) -> str:
    if os.path.isfile(os.path.join(path, ADAPTER_CONFIG)):
        return "adapter"
    if os.path.isfile(os.path.join(path, INT8_INFO)):
        return "int8"
    return "plain"


def check_dir(model_dir: str, key: str = "--model") -> str:
    """The directory's local path; adapters have no config.json of their own, so they are checked here."""
    path = os.path.expanduser(resolve_package_path(model_dir, key))
    if os.path.isfile(os.path.join(path, "trainer_state.json")) and not os.path.isfile(os.path.join(path, "config.json")):
        run = Path(path).resolve().parent.parent  # RUN/checkpoints/step-N
        final = f"; the run's model is {run}" if kind(str(run)) == "adapter" or (run / "config.json").is_file() else ""
        raise UserError(f"{key}: {model_dir} is a resumable training checkpoint (optimizer and RNG state for --resume), "
                        f"not a saved model{final}")
    if os.path.isdir(path) and kind(path) == "adapter":
        if not os.path.isfile(os.path.join(path, BASE_CONFIG)):
            raise UserError(f"{key}: {model_dir} is a PEFT adapter without {BASE_CONFIG}; expected an ftkit adapter directory")
        return path
    return check_model_path(model_dir, key)


def _config_from_dict(d: dict):
    from transformers import AutoConfig

    d = dict(d)
    return AutoConfig.for_model(d.pop("model_type"), **d)


def load_config(path: str, key: str = "--model"):
    """The model's config; for an adapter, the config of the model it wraps."""
    from transformers import AutoConfig

    if kind(path) == "adapter":
        return _config_from_dict(json.loads(Path(path, BASE_CONFIG).read_text()))
    return load_saved(AutoConfig, path, key)


def base_path(path: str, key: str = "--model") -> str:
    """Where an adapter's base model is: adapter_config.json's base_model_name_or_path, else its recipe's model."""
    base = json.loads(Path(path, ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if is_gguf(base) and os.path.isfile(base):  # an adapter of a GGUF model (models/gguf.py)
        return base
    if base and not os.path.isdir(base):
        base = _relocated(path) or base
    if not base or not os.path.isdir(base):
        recipe = Path(path, "recipe.yaml")
        if recipe.is_file():
            import yaml

            base = ((yaml.safe_load(recipe.read_text()) or {}).get("model") or {}).get("from_pretrained") or base
    if not base:
        raise UserError(f"{key}: the adapter in {path} does not say which base model it adapts")
    return check_model_path(resolve_package_path(base, key), f"{key} (base model of the adapter)")


def _relocated(path: str):
    """The base of an adapter that was moved together with it: the same path relative to the adapter as when
    it was saved (relative to its run directory, too: a kept best model is saved in RUN/best, then moved up)."""
    loc = Path(path, BASE_LOCATION)
    if not loc.is_file():
        return None
    where = json.loads(loc.read_text())
    for origin in (where["saved_in"], os.path.dirname(where["saved_in"])):
        candidate = os.path.normpath(os.path.join(path, os.path.relpath(where["base"], origin)))
        if os.path.isfile(os.path.join(candidate, "config.json")):
            return candidate
    return None


def trained_as(path: str) -> Optional[str]:
    """The task of the recipe.yaml saved beside a model (what it was trained for); None without one."""
    recipe = Path(path) / "recipe.yaml"
    if not recipe.is_file():
        return None
    try:
        task = yaml.safe_load(recipe.read_text(encoding="utf-8")).get("task")
    except (yaml.YAMLError, AttributeError, OSError, UnicodeDecodeError):
        return None  # a recipe ftkit did not write: the architecture decides
    return task if isinstance(task, str) else None


def load_model(path: str, entry: TaskEntry, key: str = "--model", log=None):
    """The model in `path` as a model of `entry`'s task, in eval mode. With `log`: a line before
    (large models take a while) and one with the time it took."""
    import time

    if log is None:
        return _load_model(path, entry, key)
    log(f"loading the model from {path} ({kind(path)}) ...")
    t0 = time.perf_counter()
    model = _load_model(path, entry, key)
    _, n = count_parameters(model)
    log(f"model loaded in {time.perf_counter() - t0:.1f}s: {type(model).__name__}, {n / 1e6:.1f}M parameters")
    return model


def _load_model(path: str, entry: TaskEntry, key: str = "--model"):
    k = kind(path)
    if k == "int8":
        return load_quantized(path, entry, key).eval()
    if k == "plain" and is_gguf(path) and os.path.isfile(path):  # a GGUF file: a starting point scored with --recipe
        return gguf.load_model(path, key).eval()
    if k == "plain":
        return load_saved(auto_class(entry, load_config(path, key)), path, key).eval()
    from peft import PeftModel

    base = base_path(path, key)
    if is_gguf(base):
        model = gguf.load_model(base, f"{key} (base model)")
    else:
        with _quiet_transformers():  # the head's weights come from the adapter (modules_to_save), not the base
            model = load_saved(auto_class(entry), base, f"{key} (base model)", config=load_config(path, key))
    if entry.peft_task_type == "SEQ_CLS" and \
            json.loads(Path(path, ADAPTER_CONFIG).read_text()).get("peft_type") == "PREFIX_TUNING":
        accept_prefix_cache(model)
    try:
        return PeftModel.from_pretrained(model, path).eval()
    except Exception as e:  # peft and safetensors raise their own types
        raise UserError(f"{key}: could not load the adapter in {path}: {str(e).strip().splitlines()[0][:200]}") from None


def load_preprocessor(path: str, entry: TaskEntry, key: str = "--model"):
    """What the model reads its inputs with, saved next to it: the tokenizer, or the image processor of an
    image task (its entry says which)."""
    import transformers

    cls = {"tokenizer": "AutoTokenizer", "image_processor": "AutoImageProcessor"}.get(entry.preprocessor)
    if cls is None:
        return None
    if is_gguf(path) and os.path.isfile(path):  # the tokenizer (and chat template) inside a GGUF file
        return load_saved(getattr(transformers, cls), os.path.dirname(path), key, gguf_file=os.path.basename(path))
    return load_saved(getattr(transformers, cls), path, key)


def for_generation(model):
    """A LoRA adapter folded into its base for generating (peft's per-layer adapter calls dominate a decode step
    of a small model); other models as they are. The adapter on disk is untouched."""
    if is_peft(model) and str(getattr(model.active_peft_config, "peft_type", "")).endswith("LORA"):
        return model.merge_and_unload()
    return model


def virtual_tokens(model) -> int:
    """Positions a prompt / prefix adapter takes up in front of the input (0 for other models)."""
    conf = getattr(model, "active_peft_config", None)
    return int(getattr(conf, "num_virtual_tokens", 0) or 0) if conf is not None and conf.is_prompt_learning else 0


def weights_bytes(path: str) -> int:
    """Size on disk of a saved model's weight files (adapter: the adapter only)."""
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))

