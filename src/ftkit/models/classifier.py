"""A sequence-classification model whose head matches the data's classes.

Starting points: a new model from a config (`model.model_type`), an ftkit pre-training output
(its MLM/NSP heads are dropped, the encoder and pooler kept), any local Hugging Face directory
(e.g. a sentence-transformers encoder without any head) or a hub id. When the checkpoint already
classifies: the same classes (in any order) keep its head, in its order; other classes get a new,
randomly initialised head, and the log says so (a head trained for other classes only misleads).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Optional

from ftkit.models.anatomy import unwrap
from ftkit.models.build import _POSITION_OFFSET, build_model, check_model_path, count_parameters
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry


def head_config(labels: list[str], **extra) -> dict:
    """Config entries that make `pipeline("text-classification" / "token-classification")` answer with the real names."""
    return {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}, **extra}


def checkpoint_labels(config, entry: TaskEntry) -> Optional[list[str]]:
    """Class (or tag) names of a checkpoint that already has this task's head, else None."""
    if not entry.fits(config.architectures):
        return None
    return [str(config.id2label[i]) for i in sorted(config.id2label)]


@contextlib.contextmanager
def _quiet_transformers():
    """transformers prints a table of missing head weights on load; ftkit says what happened in one line."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def build_classifier(recipe: Recipe, entry: TaskEntry, tokenizer, labels: list[str], log=print,
                     head: str = "classification head", noun: str = "classes", **config):
    """(model, labels in the model's class-id order) for `entry`'s task (the entry gives the Auto class);
    `config`: more head settings (e.g. problem_type)."""
    m = recipe.model
    if m.model_type is not None:
        model = build_model(recipe, tokenizer, entry, **head_config(labels, **config))
        _, total = count_parameters(model)
        log(f"model: new {type(model).__name__} ({total / 1e6:.2f}M parameters), random weights, {len(labels)} {noun}")
        return model, labels
    from transformers import AutoConfig

    path = check_model_path(m.from_pretrained)
    old = checkpoint_labels(AutoConfig.from_pretrained(path, trust_remote_code=m.trust_remote_code), entry)
    reset = False
    if old is not None and len(set(old)) == len(old) and set(old) == set(labels):
        labels, note = old, f"its {head} for these {len(old)} classes is kept"
    elif old is not None:
        # A head of another size is skipped on load (ignore_mismatched_sizes); one of the same size must be reset.
        reset = len(old) == len(labels)
        note = (f"re-headed: the checkpoint classifies {len(old)} classes ({', '.join(old[:6])}"
                f"{', ...' if len(old) > 6 else ''}), the data {len(labels)} ({', '.join(labels[:6])}"
                f"{', ...' if len(labels) > 6 else ''}); the new head starts from random weights")
    else:
        note = f"new {head} for {len(labels)} {noun}"
    info: dict = {}
    with _quiet_transformers():
        model = build_model(recipe, tokenizer, entry, info, **head_config(labels, **config))
    if reset:
        reset_head(model)
    _, total = count_parameters(model)
    log(f"model: {type(model).__name__} from {m.from_pretrained} ({total / 1e6:.2f}M parameters); {note}")
    prefix = model.base_model_prefix + "."
    absent = sorted(k for k in info.get("missing_keys", []) if k.startswith(prefix) and not k.endswith("position_ids"))
    if absent:  # transformers' own report is silenced above: a checkpoint of another architecture must not pass unnoticed
        log(f"warning: {len(absent)} encoder weights are not in {m.from_pretrained} and start random "
            f"(e.g. {', '.join(absent[:3])}); is it a checkpoint of this architecture?")
    return model, labels


def reset_head(model) -> list[str]:
    """Re-initialise every linear layer outside the base encoder (the classification head); return their names."""
    import torch

    base = getattr(model, model.base_model_prefix, None)
    inside = {id(x) for x in base.modules()} if base is not None else set()
    std = getattr(model.config, "initializer_range", 0.02)
    names = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if id(module) not in inside and isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
                names.append(name)
    return names


def input_names(model, tokenizer) -> list[str]:
    """The tokenizer outputs the model takes: token_type_ids only where the model has segment embeddings."""
    accepted = inspect.signature(unwrap(model).forward).parameters  # a peft wrapper passes them on
    names = [n for n in tokenizer.model_input_names if n in accepted]
    if "token_type_ids" in names and getattr(model.config, "type_vocab_size", 2) < 2:
        names.remove("token_type_ids")  # RoBERTa-style: one segment; ids of 1 would index past the table
    return names


def max_positions(config) -> Optional[int]:
    """How many tokens the model's position embeddings allow (None: no absolute limit)."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit is None:
        return None
    return limit - _POSITION_OFFSET.get(getattr(config, "model_type", ""), 0)


def length_cap(block_size: int, config, log=None) -> int:
    """data.block_size, lowered to what the model's position embeddings allow (said once in the log)."""
    limit = max_positions(config)
    if limit is not None and block_size > limit:
        if log is not None:
            log(f"data.block_size {block_size} is more than the model's {limit} positions: texts are cut at {limit}")
        return limit
    return block_size
