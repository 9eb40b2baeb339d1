"""Fine-tuning strategies: full, freeze (embeddings / bottom layers), and peft adapters (lora, prefix, prompt).

`apply_strategy` turns the model a workflow built into what trains; the engine is unchanged (it calls
task.loss(model, batch), and a PeftModel is called like the model it wraps). Adapters are saved in
PEFT format by `save_weights`, with the wrapped model's config as `base_config.json` (its class names,
its head size) so that ftkit can rebuild the base before loading the adapter (models/saved.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ftkit.errors import UserError
from ftkit.models import anatomy
from ftkit.models.build import count_parameters
from ftkit.recipe.schema import FinetuneSection
from ftkit.task_entry import TaskEntry

PEFT_STRATEGIES = ("lora", "prefix", "prompt")
BASE_CONFIG = "base_config.json"


def describe(model) -> str:
    trainable, total = count_parameters(model)
    return f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"


def freeze(model, embeddings: bool, layers: int) -> None:
    """Freeze the embedding tables and/or the bottom `layers` transformer layers (requires_grad = False)."""
    try:
        _, _, stack = anatomy.layer_stack(model)
    except ValueError as e:
        raise UserError(f"finetune.freeze_layers: {e}") from None
    if layers > len(stack):
        raise UserError(f"finetune.freeze_layers: {layers} is more than the model's {len(stack)} layers")
    modules = [*(anatomy.embedding_modules(model) if embeddings else []), *list(stack)[:layers]]
    if embeddings:
        # LayerNorm right after the embeddings belongs to them (BERT: embeddings.LayerNorm)
        modules += [m for m in model.modules() if type(m).__name__.endswith("Embeddings")]
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)


def check_targets(model, targets: Optional[list[str]]) -> None:
    if targets is None:
        return
    have = anatomy.linear_names(model)
    missing = [t for t in targets if t not in have]
    if missing:
        raise UserError(f"finetune.target_modules: {', '.join(missing)} not in {type(model).__name__}; "
                        f"its linear layers are: {', '.join(have)}")


def peft_config(cfg: FinetuneSection, entry: TaskEntry, model):
    import peft
    from transformers.pytorch_utils import Conv1D

    task_type = entry.peft_task_type
    if cfg.strategy == "lora":
        check_targets(model, cfg.target_modules)
        conv = any(isinstance(m, Conv1D) for m in model.modules())  # GPT-2 stores Linear weights transposed
        try:
            head = list(entry.peft_head) or None
            return peft.LoraConfig(task_type=task_type, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, modules_to_save=head,
                                   lora_dropout=cfg.lora_dropout, target_modules=cfg.target_modules, fan_in_fan_out=conv)
        except ValueError as e:
            raise UserError(f"finetune.strategy lora: {str(e).splitlines()[0]}") from None
    if cfg.strategy == "prefix":
        return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=cfg.num_virtual_tokens)
    return peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=cfg.num_virtual_tokens)


def accept_prefix_cache(model) -> None:
    """Let peft's prefix tuning hand its prefix keys/values to a model whose forward calls them `cache`.

    transformers 5.24 renamed the `past_key_values` argument of BERT-family forwards to `cache`; peft
    (<= 0.21.2) decides by looking for a parameter named `past_key_values` in the model's (or its
    backbone's) signature and refuses otherwise, although the model still takes the prefix as `cache`
    (it prepends the per-layer keys/values and offsets positions as before). So the model instance gets
    a forward that takes `past_key_values` and passes it on as `cache`; on older transformers (whose
    forwards still name it `past_key_values`) nothing changes. Only for sequence classification: peft's
    causal-LM prefix path does not look at the signature, and generate() validates its kwargs against it.
    """
    import inspect

    params = inspect.signature(model.forward).parameters
    if "past_key_values" in params or "cache" not in params and not _kwargs_reach_cache(model):
        return
    original = model.forward

    def forward(*args, past_key_values=None, **kwargs):
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return original(*args, **kwargs)

    model.forward = forward


def _kwargs_reach_cache(model) -> bool:
    """A head model (e.g. BertForSequenceClassification) passes **kwargs on to a backbone that takes `cache`."""
    import inspect

    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if backbone is None or backbone is model:
        return False
    head = inspect.signature(model.forward).parameters
    return any(p.kind is p.VAR_KEYWORD for p in head.values()) and "cache" in inspect.signature(backbone.forward).parameters


def apply_strategy(model, cfg: FinetuneSection, entry: TaskEntry, log=print):
    """The model to train under `cfg.strategy` (the same object for full / freeze, a PeftModel for adapters)."""
    if cfg.strategy == "freeze":
        if not cfg.freeze_embeddings and cfg.freeze_layers == 0:
            raise UserError("finetune.strategy freeze: set finetune.freeze_embeddings: true and/or finetune.freeze_layers: N")
        freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
    elif cfg.strategy in PEFT_STRATEGIES:
        import peft

        if cfg.strategy not in entry.adapters:  # (the recipe schema says so first, naming the tasks that take it)
            raise UserError(f"finetune.strategy {cfg.strategy}: not available for task {entry.name}; expected one of "
                            f"{', '.join(('full', 'freeze', *entry.adapters))}")
        conf = peft_config(cfg, entry, model)
        task_type = conf.task_type
        if cfg.strategy == "prefix" and task_type == "SEQ_CLS":
            accept_prefix_cache(model)
        try:
            model = peft.get_peft_model(model, conf)
        except ValueError as e:  # e.g. no default target modules for this architecture
            raise UserError(f"finetune.strategy {cfg.strategy}: {str(e).splitlines()[0][:300]}"
                            + (f"; set finetune.target_modules (linear layers: {', '.join(anatomy.linear_names(model))})"
                               if cfg.strategy == "lora" else "")) from None
    if cfg.strategy != "full":
        log(f"finetune.strategy {cfg.strategy}: {describe(model)}")
    return model


def store_frozen_in(model, dtype) -> int:
    """Keep the frozen weights of an adapter's base model in `dtype` (bf16 under bf16 autocast): autocast caches
    its casts only for weights that require grad, so frozen fp32 weights would be cast again at every forward
    (and kept twice in memory). The adapter's own weights stay fp32 (AdamW updates them). Returns how many."""
    n = 0
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
            n += p.numel()
    return n


def is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


BASE_LOCATION = "ftkit_base.json"


def _absolute_base(config_file: Path) -> None:
    """peft records the base model as it was given (often a relative path): made absolute, the adapter loads
    from any directory; ftkit_base.json also records where the adapter was, so that an adapter moved together
    with its base (the same relative layout) still finds it (models/saved.base_path)."""
    import os

    conf = json.loads(config_file.read_text())
    base = conf.get("base_model_name_or_path")
    if base and os.path.isdir(base):
        base = os.path.abspath(base)
        if conf["base_model_name_or_path"] != base:
            conf["base_model_name_or_path"] = base
            config_file.write_text(json.dumps(conf, indent=2, sort_keys=True) + "\n")
        where = {"base": base, "saved_in": os.path.abspath(config_file.parent)}
        (config_file.parent / BASE_LOCATION).write_text(json.dumps(where, indent=2) + "\n")


def save_weights(model, path: Path, state_dict: Optional[dict] = None) -> None:
    """`save_pretrained`: the whole model, or for a PeftModel only the adapter (+ modules_to_save) and base_config.json."""
    if not is_peft(model):
        model.save_pretrained(str(path), state_dict=state_dict)
        return
    # peft filters the full state dict (gathered by the engine, e.g. under FSDP) down to the adapter's weights
    had_card = (path / "README.md").exists()
    model.save_pretrained(str(path), state_dict=state_dict, safe_serialization=True)
    if not had_card:  # peft's template card ("More Information Needed" sections): ftkit writes a real one (models/card.py)
        (path / "README.md").unlink(missing_ok=True)
    _absolute_base(path / "adapter_config.json")
    base = model.get_base_model()
    config = base.config.to_dict()
    config["architectures"] = [type(base).__name__]
    (path / BASE_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

