"""`ftkit chat` (a multi-turn conversation in the terminal) and `ftkit generate --chat` (one turn).

The prompt is the model's chat template with its generation prompt -- what sft trained on
(data/chat_tokens.py) -- and the reply is streamed token by token with transformers' TextStreamer.
Loads plain models, merged models and LoRA adapters (models/saved.py).
"""

from __future__ import annotations

import sys
from typing import Optional, TextIO

from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.build import load_saved
from ftkit.wording import with_article

HELP = "/reset starts a new conversation, /exit (or end of input) quits"


class Session:
    def __init__(self, model_dir: str, system: Optional[str] = None, max_new_tokens: int = 256, temperature: float = 0.2,
                 top_p: Optional[float] = 0.9, seed: int = 1337, log=print):
        import torch
        from transformers import AutoTokenizer

        from ftkit import registry

        path = saved.check_dir(model_dir, "--model")
        task = registry.infer(saved.load_config(path).architectures)
        if task is not None and not registry.entry(task).causal:
            raise UserError(f"--model: {model_dir} is {with_article(task)} model, not a chat (causal) language model")
        self.tokenizer = load_saved(AutoTokenizer, path)
        if not self.tokenizer.chat_template:
            raise UserError(f"--model: {model_dir} has no chat template (train it with task sft, or use ftkit generate)")
        self.model = saved.for_generation(saved.load_model(path, "sft", log=log))
        if temperature < 0:
            raise UserError("--temperature: expected a number >= 0 (0 = greedy)")
        self.system, self.max_new_tokens = system, max_new_tokens
        self.sampling = {"do_sample": temperature > 0, **({"temperature": temperature, "top_p": top_p} if temperature > 0 else {})}
        self.messages: list[dict] = []
        self.torch = torch
        torch.manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def reply(self, text: str, out: Optional[TextIO] = None) -> str:
        """Add the user's turn, generate the assistant's (streamed to `out`), keep both in the conversation."""
        from transformers import TextStreamer

        from ftkit.data.chat_tokens import prompt_ids, stop_ids

        self.messages.append({"role": "user", "content": text})
        ids = self.torch.tensor([prompt_ids(self.tokenizer, self.messages, "the conversation")])
        streamer = None
        if out is not None:
            streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            streamer.on_finalized_text = lambda s, stream_end=False: (out.write(s + ("\n" if stream_end else "")), out.flush())
        stop = stop_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        with self.torch.no_grad():
            gen = self.model.generate(input_ids=ids, attention_mask=self.torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                      eos_token_id=stop, pad_token_id=self.tokenizer.pad_token_id, streamer=streamer,
                                      **self.sampling)
        answer = self.tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip()
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
        turns += 1
    return turns
