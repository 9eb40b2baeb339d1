"""Build a model from a Transformers config (new) or load one (`from_pretrained`), matched to the tokenizer."""

from __future__ import annotations

import os
from typing import Optional

from ftkit.errors import UserError
from ftkit.models import gguf
from ftkit.paths import is_gguf, is_local, locate_gguf, missing, not_found_note, resolve_package_path
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry

# RoBERTa-family position ids start after the padding index.
_POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}


def check_model_path(path: str, key: str = "model.from_pretrained") -> str:
    if is_gguf(path):
        return locate_gguf(path, key)
    p = os.path.expanduser(resolve_package_path(path, key))
    if is_local(path):
        if not os.path.isdir(p):
            raise UserError(missing(path, key))
        if not os.path.isfile(os.path.join(p, "config.json")):
            raise UserError(f"{key}: {path} has no config.json; expected a save_pretrained model directory")
    return p


def load_saved(cls, path: str, key: str = "--model", **kwargs):
    """`cls.from_pretrained(path)` with a one-line error for a damaged directory (e.g. a truncated safetensors file)."""
    try:
        return cls.from_pretrained(path, **kwargs)
    except Exception as e:  # safetensors, torch and transformers each raise their own types here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]

        if not_found_note(path):
            raise UserError(f"{key}: {not_found_note(path)}: {first}") from None
        weights = [f for f in ("model.safetensors", "model.safetensors.index.json") if os.path.exists(os.path.join(path, f))]
        raise UserError(f"{key}: could not load {os.path.join(path, weights[0]) if weights else path}: {first}") from None


def auto_class(entry: TaskEntry, config=None):
    """The transformers Auto class of a task's models (its entry says which; where it names more than one,
    e.g. mim's MAE and SimMIM models, the one that builds `config`'s model type)."""
    import transformers

    classes = [getattr(transformers, name) for name in (entry.auto_class, *entry.more_auto_classes)]
    if config is not None:
        for cls in classes:
            if type(config) in cls._model_mapping:
                return cls
    return classes[0]


def config_of(m):
    """A new config of model.model_type with the model.config overrides (each must be a setting of it)."""
    from transformers import AutoConfig

    try:
        default = AutoConfig.for_model(m.model_type)
    except ValueError as e:
        raise UserError(f"model.model_type: {e}".splitlines()[0]) from None
    for key in m.config:
        if not hasattr(default, key):
            raise UserError(f"model.config.{key}: not a setting of {type(default).__name__}")
    # through the constructor, not setattr: settings derived from others are derived from the recipe's values
    # (ModernBERT's layer_types, one per layer, from num_hidden_layers)
    try:
        return AutoConfig.for_model(m.model_type, **m.config)
    except (ValueError, TypeError) as e:
        raise UserError(f"model.config: not a valid {type(default).__name__}: {str(e).strip().splitlines()[-1]}") from None


def new_config(recipe: Recipe, tokenizer):
    m = recipe.model
    cfg = config_of(m)
    if tokenizer is not None:  # (image models have none)
        # model.config.vocab_size may pad the vocabulary beyond the tokenizer (nanoGPT's 50,304 for GPT-2's 50,257:
        # a multiple of 64 suits GPU matmuls); the unused rows are never targets
        wanted = m.config.get("vocab_size")
        if wanted is not None and wanted < len(tokenizer):
            raise UserError(f"model.config.vocab_size: {wanted} is smaller than the tokenizer's {len(tokenizer):,} tokens; "
                            f"leave it out (it follows the tokenizer) or set at least {len(tokenizer)}")
        cfg.vocab_size = wanted or len(tokenizer)
        # the special ids the config names, from the tokenizer: a default of another vocabulary (ModernBERT's
        # 50281 / 50282 for [CLS] / [SEP]) would point outside this one; one the tokenizer lacks becomes None
        for name in ("pad", "bos", "eos", "cls", "sep", "mask"):
            key = f"{name}_token_id"
            if name in ("pad", "bos", "eos") or hasattr(cfg, key):
                tid = getattr(tokenizer, key, None)
                if tid is not None:
                    setattr(cfg, key, tid)
                elif isinstance(getattr(cfg, key, None), int) and getattr(cfg, key) >= cfg.vocab_size:
                    setattr(cfg, key, None)
    positions = recipe.data.block_size + _POSITION_OFFSET.get(m.model_type, 0)
    for attr in ("n_positions", "max_position_embeddings"):
        if hasattr(cfg, attr) and attr not in m.config:
            setattr(cfg, attr, positions)
    return cfg


def set_dropout(cfg, p: Optional[float]) -> None:
    if p is None:
        return
    for key, value in list(cfg.to_dict().items()):
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key) and "classifier" not in key:
            setattr(cfg, key, p)


def build_model(recipe: Recipe, tokenizer, entry: TaskEntry, loading_info: Optional[dict] = None, **head_kwargs):
    """A model for the task of `entry`, on CPU, in fp32 (mixed precision comes from autocast).
    `loading_info`: filled with transformers' report of a from_pretrained load (missing_keys, ...)."""
    task = entry.name
    m = recipe.model
    if m.model_type is not None:
        cfg = new_config(recipe, tokenizer)
        for k, v in head_kwargs.items():
            setattr(cfg, k, v)
        set_dropout(cfg, recipe.train.dropout)
        cls = auto_class(entry, cfg)
        try:
            model = cls.from_config(cfg, trust_remote_code=m.trust_remote_code)
        except ValueError as e:
            raise UserError(f"model.model_type: '{m.model_type}' cannot be built for task {task}: {str(e).splitlines()[0]}") from None
    elif is_gguf(m.from_pretrained):
        if not entry.decoder_only:
            raise UserError(f"model.from_pretrained: a GGUF file holds a causal LM; task {task} needs another model")
        def adjust(cfg) -> None:
            for key, value in m.config.items():
                setattr(cfg, key, value)
            set_dropout(cfg, recipe.train.dropout)

        model = gguf.load_model(m.from_pretrained, adjust=adjust)
    else:
        path = check_model_path(m.from_pretrained)
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(path, trust_remote_code=m.trust_remote_code)
        for key, value in m.config.items():
            setattr(cfg, key, value)
        for k, v in head_kwargs.items():
            setattr(cfg, k, v)
        set_dropout(cfg, recipe.train.dropout)
        cls = auto_class(entry, cfg)
        try:
            model, info = cls.from_pretrained(path, config=cfg, trust_remote_code=m.trust_remote_code, output_loading_info=True,
                                              ignore_mismatched_sizes=bool(head_kwargs))  # a head for other classes
            if loading_info is not None:
                loading_info.update(info)
        except (OSError, ValueError) as e:
            raise UserError(f"model.from_pretrained: could not load '{m.from_pretrained}' for task {task}: "
                            f"{str(e).strip().splitlines()[0]}") from None
    check_vocab(model, tokenizer)
    return model


def check_vocab(model, tokenizer) -> None:
    if tokenizer is None:
        return
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise UserError(f"the tokenizer has {len(tokenizer)} tokens but the model's embeddings have {rows} rows; "
                        f"use the model's own tokenizer or a vocabulary of at most {rows}")


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total), tied weights once: transformers' num_parameters; peft's own count for an adapter
    (its virtual-token encoders are not inside the base model)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return model.num_parameters(only_trainable=True), model.num_parameters()
