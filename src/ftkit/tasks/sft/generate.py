"""Generation evaluation of a chat model (`ftkit eval --generate`): greedy replies, answers extracted, exact match.

A Task like any other, so the engine's evaluator batches it: each batch is a set of prompts rendered as
inference renders them (chat template + generation prompt), left-padded so that every row's reply starts at
the same column; eval_step generates and returns the replies (texts, per example), which the engine gathers
from every rank in the global batch order (task contract v2); compute_metrics extracts the answers and scores
them, so `ftkit eval --generate --num-processes N` scores what 1 process does. The records it scored (the last
evaluation's, as qa keeps its answers) are written to a JSONL file for reading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ftkit.data.chat_tokens import prompt_ids, stop_ids
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.tasks.sft import data as chat
from ftkit.tasks.spec import EvalRequest, EvalSetup


def extract(text: str, pattern: Optional[str], remove: str = "") -> str:
    """The answer in a reply: the pattern's first group (or whole match), else the first non-empty line."""
    if pattern:
        m = re.search(pattern, text)
        found = "" if m is None else (m.group(1) if m.re.groups else m.group(0))
    else:
        found = next((line for line in text.splitlines() if line.strip()), "")
    return found.translate(str.maketrans("", "", remove)).strip()


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str, remove: str = "") -> str:
    """The last number of a reply (lm-evaluation-harness's "flexible" GSM8K extraction), "" if none; a trailing
    ".0" is dropped so 18.0 == 18."""
    found = _NUMBER.findall(text)
    if not found:
        return ""
    value = found[-1].translate(str.maketrans("", "", remove)).strip()
    return value[:-2] if value.endswith(".0") else value


class GenerationEval(TaskBase):
    name = "sft-generate"
    metrics = {"exact_match": True}

    def __init__(self, tokenizer, references: list[str], prompts: list[list[dict]], max_new_tokens: int,
                 pattern: Optional[str], remove: str, generation_config=None):
        self.tokenizer = tokenizer
        self.references = references
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens
        self.pattern, self.remove = pattern, remove
        self.stop = stop_ids(tokenizer, generation_config)
        self.last_records: list[dict] = []  # what the last compute_metrics scored, by index (for the JSONL file)

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(examples), width), pad, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for r, e in enumerate(examples):  # left padding: the replies start together
            n = len(e["input_ids"])
            ids[r, width - n:] = torch.as_tensor(e["input_ids"])
            mask[r, width - n:] = 1
        return {"input_ids": ids, "attention_mask": mask, "index": torch.tensor([e["index"] for e in examples])}

    def count_targets(self, batch) -> int:
        return int(batch["index"].numel())

    def loss(self, model, batch):
        raise NotImplementedError("generation evaluation does not train")

    def eval_step(self, model, batch) -> dict:
        """Per example: its index, the reply (text) and whether generation stopped at an end-of-turn token."""
        width = batch["input_ids"].shape[1]
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=False,
                             max_new_tokens=self.max_new_tokens, eos_token_id=self.stop,
                             pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, width:]
        stopped = torch.isin(new, torch.tensor(self.stop, device=new.device)).any(1)
        return {"index": batch["index"].cpu().numpy(), "reply": [self.tokenizer.decode(row, skip_special_tokens=True) for row in new],
                "stopped": stopped.cpu().numpy()}

    def record(self, index: int, reply: str, stopped: bool) -> dict:
        """One reply scored: the answers extracted from it and from the reference, exact and flexible match."""
        ref = self.references[index]
        # the reference's answer is found as the reply's is (a reference the pattern misses counts whole)
        want = extract(ref, self.pattern if not self.pattern or re.search(self.pattern, ref) else None, self.remove)
        got = extract(reply, self.pattern, self.remove)
        # flexible: a model that does not write the pattern (a zero-shot "before" model) is scored on its last number
        loose = got if got or not self.pattern else last_number(reply, self.remove)
        return {"index": index, "prompt": self.prompts[index][-1]["content"], "reference": want, "answer": got,
                "correct": bool(got) and got == want, "flexible_answer": loose, "flexible_correct": bool(loose) and loose == want,
                "reply": reply, "stopped": bool(stopped)}

    def compute_metrics(self, totals) -> dict:
        replies = totals.get("reply", [])
        records = [self.record(int(i), r, bool(s)) for i, r, s in zip(totals.get("index", []), replies, totals.get("stopped", []))]
        self.last_records = sorted(records, key=lambda r: r["index"])
        count = len(records)
        n = max(count, 1)
        out = {"exact_match": sum(r["correct"] for r in records) / n}
        if self.pattern:  # the answer by the pattern, else the reply's last number
            out["flexible_match"] = sum(r["flexible_correct"] for r in records) / n
        return {**out, "examples": count, "stopped_by_eos": sum(r["stopped"] for r in records) / n}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for r in self.last_records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(path)


def generation_setup(req: EvalRequest, tokenizer) -> EvalSetup:
    """Prompts (every turn but the last assistant one) and references (that turn) of --data, sft.eval_data or the
    validation data; the first sft.eval_rows rows."""
    recipe = req.recipe
    sft = recipe.sft
    if req.data is not None:
        spec, key = req.data, "--data"
    elif sft.eval_data is not None:
        spec, key = sft.eval_data, "sft.eval_data"
    elif recipe.data.validation is not None:
        spec, key = recipe.data.validation, "data.validation"
    else:
        raise UserError(f"--data: {req.model_dir} names no evaluation set (sft.eval_data or data.validation); pass --data FILE")
    convs = chat.load(spec, recipe.data, sft, key, rows=sft.eval_rows)
    items, refs, prompts = [], [], []
    for i, (msgs, where) in enumerate(zip(convs.messages, convs.where)):
        if msgs[-1]["role"] != "assistant":
            raise UserError(f"{where}: the last turn is {msgs[-1]['role']}; expected the reference reply (assistant) last")
        prompts.append(msgs[:-1])
        refs.append(msgs[-1]["content"])
        items.append({"input_ids": np.asarray(prompt_ids(tokenizer, msgs[:-1], where), dtype=np.int32), "index": i})
    req.log(f"generation eval: {len(items):,} prompts from {convs.source}"
            + (f" (first {sft.eval_rows:,} rows)" if sft.eval_rows else "") + f", greedy, up to {sft.max_new_tokens} new tokens"
            + (f", answers by /{sft.answer_pattern}/" if sft.answer_pattern else ", answer = first line of the reply"))
    task = GenerationEval(tokenizer, refs, prompts, sft.max_new_tokens, sft.answer_pattern, sft.answer_remove,
                          getattr(req.model, "generation_config", None))
    stem = Path(convs.source.split(",")[0]).stem if req.data or sft.eval_data else "validation"
    out = Path(req.generations or Path(req.path) / f"generations-{stem}.jsonl")

    if out.is_dir():
        raise UserError(f"--generations: {out} is a directory; expected a file name for the replies (JSONL)")

    def finish(result: dict) -> None:
        try:
            task.write(out)
        except OSError as e:
            raise UserError(f"--generations: cannot write {out}: {e.strerror}; pass --generations FILE elsewhere") from None
        result["data"] = convs.source
        result["generations"] = str(out)
        req.log(f"generations written to {out}")

    items = sorted(items, key=lambda it: len(it["input_ids"]))  # little padding; metrics do not depend on order
    return EvalSetup(task, items, 0, {"data_rows": len(items)}, finish)


def render(r: dict) -> str:
    keys = [("model", r["model"]), ("data", r["data"]), ("examples", f"{r['examples']:,}"),
            ("exact_match", f"{r['exact_match']:.4f}"),
            *([("flexible_match", f"{r['flexible_match']:.4f} (pattern, else the reply's last number)")]
              if "flexible_match" in r else []),
            ("stopped by eos", f"{r['stopped_by_eos']:.3f}"), ("generations", r.get("generations", ""))]
    w = max(len(k) for k, _ in keys)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in keys)
