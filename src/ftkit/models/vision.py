"""Image models: a classifier (new, pre-trained, or the encoder of an ftkit masked-image pre-training) and the
masked-image models (MAE: ViTMAEForPreTraining; SimMIM: ViTForMaskedImageModeling).

Every image model here takes 3 channels (models see RGB; grayscale data is repeated, tasks/vision/pixels.py) of
size x size pixels, where the patch size must divide the size. An MAE checkpoint is a `vit_mae` model that
`AutoModelForImageClassification` does not accept: its encoder has ViT's layout, so the classifier is a
ViT built from the encoder's settings, loaded with the encoder's weights (the decoder is dropped).
"""

from __future__ import annotations

import os
from typing import Optional

from ftkit.errors import UserError
from ftkit.models.build import check_model_path, config_of, count_parameters, load_saved, set_dropout
from ftkit.models.classifier import _quiet_transformers, build_classifier, head_config
from ftkit.recipe.schema import Recipe
from ftkit.task_entry import TaskEntry

CHANNELS = 3
# ViTMAEConfig's encoder settings, which ViTConfig shares
ENCODER_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps",
                "image_size", "patch_size", "num_channels", "qkv_bias")


def _side(value) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def check_geometry(cfg, source: str) -> None:
    """The patch size divides the image size; 3 input channels (what pipelines pass)."""
    size, patch = _side(getattr(cfg, "image_size", 0)), _side(getattr(cfg, "patch_size", 1))
    if size % patch:
        raise UserError(f"{source}: patch_size {patch} does not divide the image size {size} (image.size); "
                        f"choose a patch size that divides it, e.g. {', '.join(str(d) for d in range(2, size) if size % d == 0)}")
    if getattr(cfg, "num_channels", CHANNELS) != CHANNELS:
        raise UserError(f"{source}: num_channels {cfg.num_channels}; ftkit's image models take 3 (HF image pipelines "
                        f"pass RGB); for grayscale data set image.channels: 1 (repeated into the 3)")


def pretrained_info(recipe: Recipe) -> tuple[Optional[int], Optional[tuple], Optional[str]]:
    """(image size, (mean, std) of its image processor, model_type) of model.from_pretrained; Nones for a new model."""
    m = recipe.model
    if m.from_pretrained is None:
        return None, None, None
    import json

    from transformers import AutoConfig

    path = check_model_path(m.from_pretrained)
    cfg = AutoConfig.from_pretrained(path, trust_remote_code=m.trust_remote_code)
    stats = None
    proc = os.path.join(path, "preprocessor_config.json")
    if os.path.isfile(proc):
        p = json.loads(open(proc).read())
        if p.get("image_mean") and p.get("image_std"):
            stats = (p["image_mean"], p["image_std"])
    return _side(cfg.image_size), stats, cfg.model_type


def _new_config(recipe: Recipe, size: int, **extra):
    m = recipe.model
    cfg = config_of(m)
    if "image_size" in m.config and _side(m.config["image_size"]) != size:
        raise UserError(f"model.config.image_size {m.config['image_size']} differs from the images' size {size}; "
                        f"set image.size instead (the images are resized to it)")
    cfg.image_size, cfg.num_channels = size, cfg.num_channels if "num_channels" in m.config else CHANNELS
    for key, value in extra.items():
        setattr(cfg, key, value)
    set_dropout(cfg, recipe.train.dropout)
    check_geometry(cfg, "model.config")
    return cfg


def image_classifier(recipe: Recipe, entry: TaskEntry, labels: list[str], size: int, log=print):
    """(model, labels in the model's order) for image-cls (`entry`)."""
    m = recipe.model
    if m.model_type is not None:
        cfg = _new_config(recipe, size)
        return build_classifier(recipe, entry, None, labels, log, image_size=size, num_channels=cfg.num_channels)
    _, _, model_type = pretrained_info(recipe)
    if model_type == "vit_mae":
        return from_mae(recipe, labels, log), labels
    model, labels = build_classifier(recipe, entry, None, labels, log)
    check_geometry(model.config, f"model.from_pretrained ({m.from_pretrained})")
    return model, labels


def from_mae(recipe: Recipe, labels: list[str], log=print):
    """A ViTForImageClassification holding the encoder of an MAE checkpoint and a new head (logged: what loaded)."""
    from transformers import AutoConfig, ViTConfig, ViTForImageClassification

    m = recipe.model
    path = check_model_path(m.from_pretrained)
    mae = AutoConfig.from_pretrained(path)
    cfg = ViTConfig(**{k: getattr(mae, k) for k in ENCODER_KEYS}, **head_config(labels))
    for key, value in m.config.items():
        setattr(cfg, key, value)
    set_dropout(cfg, recipe.train.dropout)
    # from_pretrained, not load_state_dict: transformers maps the checkpoint's key names to the model's own
    with _quiet_transformers():
        model, info = load_saved(ViTForImageClassification, path, "model.from_pretrained", config=cfg,
                                 output_loading_info=True)
    missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
    if any(not k.startswith("classifier.") for k in missing) or any(not k.startswith("decoder.") for k in unexpected):
        raise UserError(f"model.from_pretrained: {m.from_pretrained} is not an MAE checkpoint of this layout "
                        f"(missing {', '.join(missing[:3])}; unexpected {', '.join(unexpected[:3])})")
    _, total = count_parameters(model)
    log(f"model: ViTForImageClassification from the MAE encoder in {m.from_pretrained} (its decoder, "
        f"{len(unexpected)} tensors, dropped), new classification head for {len(labels)} classes ({total / 1e6:.2f}M parameters)")
    return model


def mim_model(recipe: Recipe, size: int, log=print):
    """MAE (model_type vit_mae) or SimMIM (vit and the other types AutoModelForMaskedImageModeling knows)."""
    from transformers import AutoModelForMaskedImageModeling, AutoModelForPreTraining

    m = recipe.model
    ratio = recipe.masking.probability
    if m.model_type is not None:
        extra = {}
        if m.model_type == "vit_mae":
            extra = {"mask_ratio": ratio, **({} if "norm_pix_loss" in m.config else {"norm_pix_loss": True})}
        cfg = _new_config(recipe, size, **extra)
        if m.model_type != "vit_mae" and "encoder_stride" not in m.config and hasattr(cfg, "encoder_stride"):
            cfg.encoder_stride = _side(cfg.patch_size)  # SimMIM's decoder upsamples each patch back to pixels
        cls = AutoModelForPreTraining if m.model_type == "vit_mae" else AutoModelForMaskedImageModeling
        try:
            model = cls.from_config(cfg)
        except ValueError as e:
            raise UserError(f"model.model_type: '{m.model_type}' has no masked-image model (MAE: vit_mae; SimMIM: vit, "
                            f"deit, swin): {str(e).splitlines()[0][:160]}") from None
        _, total = count_parameters(model)
        log(f"model: new {type(model).__name__} ({total / 1e6:.2f}M parameters), random weights")
    else:
        path = check_model_path(m.from_pretrained)
        _, _, model_type = pretrained_info(recipe)
        cls = AutoModelForPreTraining if model_type == "vit_mae" else AutoModelForMaskedImageModeling
        with _quiet_transformers():
            model = load_saved(cls, path, "model.from_pretrained")
        if model_type == "vit_mae":
            model.config.mask_ratio = ratio
        log(f"model: {type(model).__name__} from {m.from_pretrained}")
    check_geometry(model.config, "model")
    return model


def is_mae(model) -> bool:
    return getattr(model.config, "model_type", "") == "vit_mae"


def patch_grid(model) -> tuple[int, int]:
    """(patch size, patches per side)."""
    size, patch = _side(model.config.image_size), _side(model.config.patch_size)
    return patch, size // patch
