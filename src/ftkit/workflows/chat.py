"""`ftkit chat` (a multi-turn conversation in the terminal) and `ftkit generate --chat` (one turn).

The prompt is the model's chat template with its generation prompt -- what sft trained on
(data/chat_tokens.py) -- and the reply is streamed token by token with transformers' TextStreamer.
Loads plain models, merged models and LoRA adapters (models/saved.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, TextIO

from ftkit import registry
from ftkit.data.chat_tokens import prompt_ids, stop_ids
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.build import load_saved
from ftkit.wording import with_article
from ftkit.workflows import repetition
from ftkit.workflows.resolve import task_of_saved

HELP = "/reset starts a new conversation, /exit (or end of input) quits"
# The repetition guard's defaults for chat replies (over the reply only: workflows/repetition.py). Measured on
# SmolLM2-135M-Instruct, greedy, "What colour is snow?": the untrained model loops ("purest purest ...") to the token
# limit without a penalty and stops after 61 tokens with 1.1; a 20-step LoRA model's replies are unchanged by it.
# N-gram blocking stays off: it also forbids wanted repeats (lists, numbers, code).
REPETITION_PENALTY = 1.1
NO_REPEAT_NGRAM_SIZE = 0


def run_system_prompt(path: str) -> Optional[str]:
    """The system prompt the model was trained with: the recipe's sft.system_prompt (saved as recipe.yaml next to
    the model, also in merged exports), else the system turn every training conversation shared (metrics.json,
    written by sft for data whose rows bring their own); None when training had none."""
    import json

    import yaml

    try:
        recipe = yaml.safe_load(Path(path, "recipe.yaml").read_text()) or {}
        # sft.system_prompt; data.system_prompt in runs trained before sft had its own section
        prompt = (recipe.get("sft") or {}).get("system_prompt") or (recipe.get("data") or {}).get("system_prompt")
        if prompt:
            return str(prompt)
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    try:
        prompt = json.loads(Path(path, "metrics.json").read_text()).get("system_prompt")
    except (OSError, ValueError, AttributeError):
        return None
    return str(prompt) if prompt else None


def generation_options(temperature: float, top_p: Optional[float], top_k: Optional[int] = None) -> dict:
    """generate() keyword arguments for sampling (temperature 0: greedy); a bad value is a one-line error."""
    if temperature < 0:
        raise UserError("--temperature: expected a number >= 0 (0 = greedy)")
    out: dict = {"do_sample": temperature > 0}
    if temperature > 0:
        out.update(temperature=temperature, top_p=top_p, **({"top_k": top_k} if top_k is not None else {}))
    return out


class Session:
    """A conversation with a saved chat model. `system`: None = the run's own system prompt when training had one
    (run_system_prompt), "" = none, else that text."""

    def __init__(self, model_dir: str, system: Optional[str] = None, max_new_tokens: int = 256, temperature: float = 0.2,
                 top_p: Optional[float] = 0.9, seed: int = 1337, log=print, repetition_penalty: float = REPETITION_PENALTY,
                 no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE):
        import torch
        from transformers import AutoTokenizer

        path = saved.check_dir(model_dir, "--model")
        task = task_of_saved(path)
        if task is not None and not task.generates:
            raise UserError(f"--model: {model_dir} is {with_article(task.name)} model, not a chat (causal) language model")
        if task is not None and task.encoder_decoder:
            raise UserError(f"--model: {model_dir} is an encoder-decoder ({task.name}); chat is for causal LMs: use "
                            f"`ftkit predict --model {model_dir}` or `ftkit generate --prompt TEXT`")
        self.tokenizer = load_saved(AutoTokenizer, path)
        if not self.tokenizer.chat_template:
            raise UserError(f"--model: {model_dir} has no chat template (train it with task sft, or use ftkit generate)")
        repetition.check(repetition_penalty, no_repeat_ngram_size)
        self.sampling = generation_options(temperature, top_p)
        self.repetition_penalty, self.no_repeat_ngram_size = repetition_penalty, no_repeat_ngram_size
        self.model = saved.for_generation(saved.load_model(path, task or registry.entry("sft"), log=log))
        if system is None:
            system = run_system_prompt(path)
            if system:
                log(f"system prompt: the one the model was trained with (--system '' for none): {system[:80]!r}")
        self.system, self.max_new_tokens = system, max_new_tokens
        self.messages: list[dict] = []
        self.stopped = True  # whether the last reply ended with an end-of-turn token
        self.torch = torch
        torch.manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def reply(self, text: str, out: Optional[TextIO] = None) -> str:
        """Add the user's turn, generate the assistant's (streamed to `out`), keep both in the conversation."""
        from transformers import LogitsProcessorList, TextStreamer

        self.messages.append({"role": "user", "content": text})
        ids = self.torch.tensor([prompt_ids(self.tokenizer, self.messages, "the conversation")])
        streamer = None
        if out is not None:
            streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            streamer.on_finalized_text = lambda s, stream_end=False: (out.write(s + ("\n" if stream_end else "")), out.flush())
        stop = stop_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        guard = repetition.ReplyRepetitionGuard(ids.shape[1], self.repetition_penalty, self.no_repeat_ngram_size, tuple(stop))
        with self.torch.no_grad():
            gen = self.model.generate(input_ids=ids, attention_mask=self.torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                      eos_token_id=stop, pad_token_id=self.tokenizer.pad_token_id, streamer=streamer,
                                      logits_processor=LogitsProcessorList([guard]), **self.sampling)
        new = gen[0, ids.shape[1]:]
        self.stopped = bool(self.torch.isin(new, self.torch.tensor(stop)).any())  # else cut at max_new_tokens
        answer = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        self.messages.append({"role": "assistant", "content": answer})
        return answer


def interactive(session: Session, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout, log=print) -> int:
    """Read user turns line by line until /exit or end of input; return the number of replies."""
    log(f"chatting with the model ({HELP})")
    turns = 0
    while True:
        out.write("you> ")
        out.flush()
        line = stdin.readline()
        if not line:
            out.write("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            session.reset()
            out.write("(new conversation)\n")
            continue
        out.write("model> ")
        session.reply(text, out)
        if not session.stopped:
            log(f"(the reply reached --max-new-tokens {session.max_new_tokens} before its end-of-turn token)")
        turns += 1
    return turns
