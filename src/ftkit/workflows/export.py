"""`ftkit export --merge`: turn a LoRA adapter into a plain model that transformers loads without peft;
`ftkit export --from-gguf`: turn a GGUF file into a plain model that transformers loads without gguf.

LoRA's update is a low-rank matrix added to existing weights, so it can be folded in
(`merge_and_unload`): the result has the base model's architecture and speed. Prefix and prompt
adapters add virtual tokens instead of changing weights; they cannot be merged and are loaded as
adapters (ftkit eval / predict / generate, or peft's PeftModel).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ftkit.data.tokenizer import load_tokenizer
from ftkit.engine import rundir
from ftkit.errors import UserError
from ftkit.models import card, gguf, saved
from ftkit.models.build import load_saved
from ftkit.wording import with_article
from ftkit.workflows.resolve import task_of_saved


def run(model_dir: str, output: str, merge: bool, log=print) -> Path:
    from transformers import AutoTokenizer

    path = saved.check_dir(model_dir, "--model")
    if saved.kind(path) != "adapter":
        raise UserError(f"--model: {model_dir} is not a PEFT adapter; it is already a model transformers loads")
    if not merge:
        raise UserError("export: pass --merge to fold the LoRA adapter into the base model's weights")
    rundir.check(output, resume=False, overwrite=False)

    task = task_of_saved(path)
    model = saved.load_model(path, task)
    peft_type = str(model.active_peft_config.peft_type.value if hasattr(model.active_peft_config.peft_type, "value")
                    else model.active_peft_config.peft_type)
    if peft_type != "LORA":
        raise UserError(f"--merge: {with_article(peft_type.lower())} adapter adds virtual tokens, it has no weights to merge "
                        f"(only LoRA merges); load it as an adapter with ftkit eval / predict / generate")
    merged = model.merge_and_unload()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    load_saved(AutoTokenizer, path).save_pretrained(str(out))
    recipe = Path(path, "recipe.yaml")
    if recipe.is_file():  # the merged model is a plain one: say so in its recipe
        raw = yaml.safe_load(recipe.read_text()) or {}
        raw.setdefault("finetune", {})["strategy"] = "full"
        (out / "recipe.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    card.write(out, task, origin=f"the LoRA adapter `{model_dir}` merged into its base model (`ftkit export --merge`)", log=log)
    log(f"merged the LoRA adapter of {model_dir} into {type(merged).__name__}; saved to {out}")
    return out


def from_gguf(path: str, output: str, log=print) -> Path:
    """A GGUF file as a safetensors directory: model (dequantized, fp32), tokenizer with its chat template, and
    generation config (its stop tokens), which transformers loads without the gguf package."""
    rundir.check(output, resume=False, overwrite=False)
    tokenizer = load_tokenizer(path, key="--from-gguf")
    model = gguf.load_model(path, "--from-gguf")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    model.config._name_or_path = ""
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    card.write(out, None, origin=f"the GGUF file `{path}` dequantized to fp32 (`ftkit export --from-gguf`)", base=path,
               log=log)
    log(f"exported {path}: {type(model).__name__}, {model.num_parameters() / 1e6:.1f}M parameters (dequantized to fp32), "
        f"tokenizer{' with its chat template' if tokenizer.chat_template else ''}; saved to {out}")
    return out
