"""`ftkit generate`: sample text from a saved causal LM."""

from __future__ import annotations

from typing import Optional

from ftkit import registry
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.build import load_saved
from ftkit.task_entry import TaskEntry
from ftkit.tasks.seq2seq.predict import settings, translate
from ftkit.tasks.spec import PredictRequest
from ftkit.wording import with_article
from ftkit.workflows.chat import generation_options
from ftkit.workflows.evaluate import saved_recipe
from ftkit.workflows.repetition import check as check_guard
from ftkit.workflows.resolve import task_of_saved


def run(model_dir: str, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
        top_k: Optional[int] = 200, top_p: Optional[float] = None, seed: int = 1337, num_samples: int = 1,
        repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0) -> list[str]:
    """`repetition_penalty` / `no_repeat_ngram_size`: transformers' repetition guard (1.0 / 0: off, the default here;
    `ftkit chat` turns the penalty on)."""
    import torch
    from transformers import AutoTokenizer, set_seed

    path = saved.check_dir(model_dir, "--model")
    task = task_of_saved(path)
    if task is not None and not task.generates:  # a classifier's hidden states would be decoded as random words
        raise UserError(f"--model: {model_dir} is {with_article(task.name)} model, not a causal language model; "
                        f"generate samples from causal LMs (ftkit pretrain with task: clm)")
    if task is not None and task.encoder_decoder:  # the prompt is a source to translate / summarize
        return _encoder_decoder(model_dir, path, task, prompt, num_samples)
    check_guard(repetition_penalty, no_repeat_ngram_size)
    options = generation_options(temperature, top_p, top_k=top_k)
    if repetition_penalty != 1.0:  # a plain continuation: transformers' own guard, over prompt and text alike
        options["repetition_penalty"] = repetition_penalty
    if no_repeat_ngram_size:
        options["no_repeat_ngram_size"] = no_repeat_ngram_size
    tokenizer = load_saved(AutoTokenizer, path)
    model = saved.load_model(path, task or registry.entry("clm"))  # plain, PEFT adapter or int8; an unknown architecture: tried as a causal LM
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"] if prompt else None
    if ids is None or ids.shape[1] == 0:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise UserError("--prompt: this tokenizer has no bos/eos token to start from; give a prompt")
        ids = torch.tensor([[start]])
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    limit = limit - saved.virtual_tokens(model) if limit else ids.shape[1] + max_new_tokens  # prompt adapters take positions
    set_seed(seed)
    kwargs = dict(options, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    ids = ids.repeat(num_samples, 1)
    # Models with absolute positions cannot see past their context: like nanoGPT's sampler, keep
    # only the most recent tokens as context and generate in chunks (generate() does not crop).
    remaining = max_new_tokens
    with torch.no_grad():
        while remaining > 0:
            ctx_len = min(ids.shape[1], max(1, limit // 2) if ids.shape[1] + remaining > limit else ids.shape[1])
            n = min(remaining, limit - ctx_len)
            ctx = ids[:, -ctx_len:]
            out = model.generate(input_ids=ctx, attention_mask=torch.ones_like(ctx), max_new_tokens=n, **kwargs)
            ids = torch.cat([ids, out[:, ctx_len:]], dim=1)
            remaining -= n
            if out.shape[1] - ctx_len < n:  # every sample stopped at an end-of-text token
                break
    return [tokenizer.decode(o, skip_special_tokens=True) for o in ids]


def _encoder_decoder(model_dir: str, path: str, task: TaskEntry, prompt: str, num_samples: int) -> list[str]:
    """An encoder-decoder's output for the prompt, decoded as its generation_config.json says (greedy or beam
    search: deterministic, so the samples repeat one output; the sampling options do not apply)."""
    from transformers.utils import logging as hf_logging

    if not prompt.strip():
        raise UserError("--prompt: an encoder-decoder writes its output for a source text; give one with --prompt")
    hf_logging.disable_progress_bar()
    model = saved.load_model(path, task)
    req = PredictRequest(model_dir, path, model, saved.load_preprocessor(path, task), saved_recipe(model_dir), None)
    return translate(model, req.preprocessor, settings(req), [prompt])[:1] * num_samples
