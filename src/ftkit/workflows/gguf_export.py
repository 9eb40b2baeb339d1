"""`ftkit export --to-gguf`: a run (a plain Llama-family causal LM, or a LoRA adapter merged into its full-precision
base first) written as one GGUF file that llama.cpp and Ollama run, with its tokenizer, chat template, special
tokens and sampling defaults in the file's metadata, and an Ollama Modelfile beside it.

The file is written under a temporary name in the same folder and then hard-linked to its name, which fails
rather than replace a file that appeared meanwhile: an existing file is never overwritten.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

from ftkit import registry
from ftkit.data import gguf_vocab
from ftkit.data.chat_tokens import stop_ids
from ftkit.errors import UserError
from ftkit.models import gguf_write, saved
from ftkit.models.build import load_saved
from ftkit.workflows import modelfile
from ftkit.workflows.chat import REPETITION_PENALTY, Session, run_system_prompt
from ftkit.workflows.resolve import task_of_saved


def _targets(output: str) -> tuple[Path, Path]:
    out = Path(output)
    if out.suffix != ".gguf":
        raise UserError(f"--output: {output}: expected a file name ending in .gguf")
    modelfile = out.with_suffix(".Modelfile")
    for p in (out, modelfile):
        if p.exists():
            raise UserError(f"--output: {p} already exists; ftkit never overwrites a file (choose another --output)")
    return out, modelfile


def sampling_defaults(generation_config) -> dict:
    """The run's own sampling settings when its generation config samples, else what `ftkit chat` uses."""
    gc = generation_config
    if gc is not None and getattr(gc, "do_sample", False):
        return {"temperature": gc.temperature, "top_p": gc.top_p, "top_k": gc.top_k,
                "repetition_penalty": gc.repetition_penalty}
    chat = inspect.signature(Session).parameters
    return {"temperature": chat["temperature"].default, "top_p": chat["top_p"].default,
            "repetition_penalty": REPETITION_PENALTY}


def _load(path: str, key: str, log):
    """The model in full precision (fp32), a LoRA adapter merged into it."""
    task = task_of_saved(path, key) or registry.entry("clm")
    model = saved.load_model(path, task, key, log=log)
    if saved.kind(path) == "adapter":
        peft_type = str(getattr(model.active_peft_config.peft_type, "value", model.active_peft_config.peft_type))
        if peft_type != "LORA":
            raise UserError(f"{key}: a {peft_type.lower()} adapter adds virtual tokens, which a GGUF file cannot hold "
                            f"(only LoRA adapters are merged and exported)")
        model = model.float().merge_and_unload()  # merged in fp32: never into a rounded or quantized base
        log(f"merged the LoRA adapter into its base model ({model.dtype})")
    return model.float().eval()


def run(model_dir: str, output: str, type_name: str = "f16", log=print) -> Path:
    from transformers import AutoTokenizer

    key = "--model"
    if type_name not in gguf_write.TYPES:
        raise UserError(f"--type: '{type_name}' is not a GGUF type this export writes; expected one of "
                        f"{', '.join(gguf_write.TYPES)}")
    out, mfile = _targets(output)
    path = saved.check_dir(model_dir, key)
    if saved.kind(path) == "int8":
        raise UserError(f"{key}: {model_dir} is an int8 model (ftkit compress quantize); export the full-precision model "
                        f"it was quantized from")
    config = saved.load_config(path, key)
    gguf_write.check_llama(config, key)
    tokenizer = load_saved(AutoTokenizer, path, key)
    vocab = gguf_vocab.from_tokenizer(tokenizer, config.vocab_size, key)  # checked before the (slow) model load
    lay = modelfile.layout(tokenizer)

    model = _load(path, key, log)
    sampling = sampling_defaults(getattr(model, "generation_config", None))

    def metadata(w) -> None:
        w.add_type("model")
        w.add_name(Path(path).name)
        vocab.add_to(w)
        w.add_sampling_temp(float(sampling["temperature"]))
        if sampling.get("top_p") is not None:
            w.add_sampling_top_p(float(sampling["top_p"]))
        if sampling.get("top_k") is not None:
            w.add_sampling_top_k(int(sampling["top_k"]))
        w.add_sampling_penalty_repeat(float(sampling["repetition_penalty"]))

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    t0 = time.perf_counter()
    try:
        written = gguf_write.write(model, str(partial), type_name, metadata)
        try:
            os.link(partial, out)
        except FileExistsError:
            raise UserError(f"--output: {out} appeared while exporting; ftkit never overwrites a file") from None
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    types = ", ".join(f"{n} x{c}" for n, c in sorted(written.types.items()))
    log(f"wrote {out}: {out.stat().st_size / 1e6:,.1f} MB, {type_name} ({written.tensors} tensors: {types}), "
        f"{len(vocab.tokens):,} tokens ({vocab.pre} pre-tokenizer), "
        f"{'chat template' if vocab.special.chat_template else 'no chat template'}, in {seconds:.1f}s")

    stops = [tokenizer.decode([i]) for i in stop_ids(tokenizer, getattr(model, "generation_config", None))]
    with open(mfile, "x", encoding="utf-8") as f:
        f.write(modelfile.text(out.name, model_dir, lay, run_system_prompt(path), stops, sampling))
    if lay is None and tokenizer.chat_template:
        log(f"note: the chat template is not a plain per-message layout; {mfile.name} has no TEMPLATE (the template "
            f"is in the GGUF file's tokenizer.chat_template)")
    log(f"wrote {mfile} (ollama create NAME -f {mfile})")
    return out
