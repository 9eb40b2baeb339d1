"""T5's span-corruption pre-training (task span-corruption): the engine Task and SPEC.

Data: the corpus as one token stream (the clm / mlm cache, data/token_cache.py) cut into blocks of `Plan.text`
tokens. Per block, a noise mask is drawn from the block's own generator (engine/batches.example_rngs; Raffel et al. 2020, sec. 3.1.4, as
t5.data.preprocessors.random_spans_noise_mask): round(text x noise_density) tokens dropped, in round(dropped /
mean_noise_span_length) spans, the span lengths a random composition of the dropped count and the kept runs one of
the kept count, kept and dropped runs alternating (a kept run first). The encoder reads the kept runs with the k-th
span replaced by the sentinel <extra_id_k> and </s> at the end; the decoder writes `<extra_id_0> span 1 <extra_id_1>
span 2 ... </s>`. Both lengths are the same for every block (T5's compute_input_and_target_lengths picks the text
length that fills data.block_size), so batches carry no padding and no attention mask.

Written here rather than taken from transformers: its only implementation is in the Flax example
run_t5_mlm_flax.py (a script, numpy's global RNG); this one draws from the engine's per-example generators (exact --resume, the same on N processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.data import lm_blocks
from ftkit.engine.batches import example_rngs
from ftkit.engine.loop import check_metric
from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models.build import build_model as build
from ftkit.models.build import count_parameters
from ftkit.tasks.family import TaskSpec
from ftkit.tasks.lm.setup import tokenizer_key
from ftkit.tasks.metrics import token_loss
from ftkit.tasks.seq2seq.entry import SPAN_CORRUPTION
from ftkit.tasks.spec import EvalRequest, EvalSetup, Prepared, sample_positions


def noise_counts(length: int, density: float, mean_span: float) -> tuple[int, int]:
    """(dropped tokens, spans) of a text of `length` tokens: at least one of each, at least one token kept."""
    noise = min(max(int(round(length * density)), 1), length - 1)
    spans = max(int(round(min(noise, length - noise) / mean_span)), 1)
    return noise, spans


@dataclass(frozen=True)
class Plan:
    """The lengths every example has: `text` tokens of the corpus -> `inputs` encoder tokens, `targets` decoder tokens."""
    text: int
    noise: int
    spans: int
    inputs: int
    targets: int

    @classmethod
    def of(cls, text: int, density: float, mean_span: float) -> "Plan":
        noise, spans = noise_counts(text, density, mean_span)
        # inputs: the kept tokens, a sentinel per span, </s>; targets: the dropped tokens, a sentinel per span, </s>
        return cls(text, noise, spans, text - noise + spans + 1, noise + spans + 1)

    @classmethod
    def fill(cls, input_length: int, density: float, mean_span: float) -> "Plan":
        """The longest text whose corrupted input fits `input_length` (T5's compute_input_and_target_lengths; the
        input length grows by 0 or 1 per text token for densities below 0.5, so it is met exactly there)."""
        if input_length < 3:
            raise UserError(f"data.block_size: {input_length} is too short for span corruption (a kept token, a sentinel "
                            "and </s> at least); T5 used 512")
        text = 2
        while cls.of(text + 1, density, mean_span).inputs <= input_length:
            text += 1
        return cls.of(text, density, mean_span)


def _composition(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """`total` split into `parts` positive lengths, uniformly over the ways to do it (cut points without replacement)."""
    cuts = np.sort(rng.choice(total - 1, parts - 1, replace=False)) + 1
    return np.diff(np.concatenate(([0], cuts, [total])))


def noise_mask(plan: Plan, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask over `plan.text` tokens, True where dropped: `plan.spans` dropped runs after as many kept ones."""
    dropped = _composition(plan.noise, plan.spans, rng)
    kept = _composition(plan.text - plan.noise, plan.spans, rng)
    runs = np.stack([kept, dropped], axis=1).reshape(-1)
    return np.repeat(np.tile([False, True], plan.spans), runs)


def _run_starts(mask: np.ndarray) -> np.ndarray:
    return mask & ~np.concatenate(([False], mask[:-1]))


def corrupt(text: np.ndarray, mask: np.ndarray, sentinels: np.ndarray, eos: int) -> tuple[np.ndarray, np.ndarray]:
    """(encoder input, decoder target) of one block: in the input each dropped span becomes its sentinel; in the target
    each kept run does, so the target reads sentinel, span, sentinel, span, ... (kept run k precedes span k)."""
    out = []
    for drop in (mask, ~mask):  # the input drops the noise, the target drops the kept runs
        starts = _run_starts(drop)
        marked = np.where(starts, sentinels[np.maximum(np.cumsum(starts) - 1, 0)], text)
        out.append(np.concatenate((marked[~drop | starts], [eos])))
    return out[0], out[1]


def reassemble(inputs, targets, sentinels) -> list[int]:
    """The text of a block back from its input and target (the inverse of `corrupt`): each sentinel of the input
    replaced by what follows it in the target."""
    sentinel = set(int(s) for s in sentinels)
    fills: dict[int, list[int]] = {}
    current = None
    for t in map(int, targets[:-1]):  # without </s>
        if t in sentinel:
            current = fills.setdefault(t, [])
        elif current is not None:
            current.append(t)
    out: list[int] = []
    for t in map(int, inputs[:-1]):
        out.extend(fills.get(t, []) if t in sentinel else [t])
    return out


def sentinel_ids(tokenizer, needed: int, key: str) -> np.ndarray:
    """Ids of <extra_id_0> ... <extra_id_{needed-1}>, each a token of its own (T5's tokenizers and `ftkit tokenize` with
    tokenizer.extra_ids put them at the top of the vocabulary, <extra_id_0> highest)."""
    vocab = tokenizer.get_vocab()
    where = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    missing = [i for i in range(needed) if f"<extra_id_{i}>" not in vocab]
    if missing:
        have = needed - len(missing)
        fix = ("set tokenizer.extra_ids: 100 (T5's count) and retrain it with `ftkit tokenize -r RECIPE --overwrite`"
               if key == "tokenizer.path" else "use a tokenizer with T5's sentinels (tokenizer.kind and tokenizer.extra_ids: 100)")
        raise UserError(f"{key}: the tokenizer {where} has {have} of the {needed} sentinel tokens span corruption needs "
                        f"here (<extra_id_0> .. <extra_id_{needed - 1}>, one per dropped span; <extra_id_{missing[0]}> missing); {fix}")
    return np.asarray([vocab[f"<extra_id_{i}>"] for i in range(needed)], dtype=np.int64)


def special_ids(model, tokenizer, key: str) -> tuple[int, int]:
    """(eos, decoder start) after checking that the model is an encoder-decoder whose pad / eos ids are the tokenizer's;
    a decoder start the config leaves unset is T5's, the pad token (transformers 5's T5Config has none, and
    T5's _shift_right and generate() both need it); it is written to the generation config too."""
    cfg = model.config
    if not getattr(cfg, "is_encoder_decoder", False):
        raise UserError(f"model: span corruption trains an encoder-decoder (model.model_type: t5, ...); "
                        f"{type(model).__name__} is not one")
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad is None or eos is None:
        raise UserError(f"{key}: the tokenizer has no {'pad' if pad is None else 'eos'} token; span corruption needs "
                        "<pad> and </s> (train one with tokenizer.kind: unigram and tokenizer.extra_ids: 100)")
    for name, ours in (("pad", pad), ("eos", eos)):
        theirs = getattr(cfg, f"{name}_token_id", None)
        if theirs != ours:
            raise UserError(f"model: its config's {name}_token_id is {theirs}, the tokenizer's {name} token is {ours} "
                            f"({key}); use the model's own tokenizer")
    if getattr(cfg, "decoder_start_token_id", None) is None:
        cfg.decoder_start_token_id = pad
    start = int(cfg.decoder_start_token_id)
    if not 0 <= start < model.get_input_embeddings().weight.shape[0]:
        raise UserError(f"model.config.decoder_start_token_id: {start} is outside the vocabulary")
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.decoder_start_token_id, gen.pad_token_id, gen.eos_token_id = start, pad, eos
    return eos, start


class SpanCorruption(TaskBase):
    name = "span-corruption"
    metrics = {"loss": False, "perplexity": False, "span_accuracy": True}

    def __init__(self, plan: Plan, sentinels: np.ndarray, eos: int, decoder_start: int):
        self.plan, self.sentinels, self.eos, self.decoder_start = plan, sentinels, eos, decoder_start

    def collate(self, blocks: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        # each block's mask from its own generator (seed, epoch, item): N processes corrupt as 1 does
        inputs, targets = zip(*(corrupt(np.asarray(b, dtype=np.int64), noise_mask(self.plan, g), self.sentinels, self.eos)
                                for b, g in zip(blocks, example_rngs(rng, len(blocks)))))
        labels = torch.from_numpy(np.stack(targets))
        start = torch.full((len(blocks), 1), self.decoder_start, dtype=torch.long)
        # teacher forcing: the decoder reads the target shifted right behind the start token (T5's _shift_right)
        return {"input_ids": torch.from_numpy(np.stack(inputs)), "decoder_input_ids": torch.cat([start, labels[:, :-1]], 1),
                "labels": labels}

    def count_targets(self, batch) -> int:
        return int(batch["labels"].numel())

    def check_model(self, model) -> None:
        rows = model.get_input_embeddings().weight.shape[0]
        if int(self.sentinels.max()) >= rows:
            raise UserError(f"model: the sentinel token ids reach {int(self.sentinels.max())}, beyond the model's {rows} "
                            "embeddings; leave model.config.vocab_size out (it follows the tokenizer)")

    @staticmethod
    def logits(model, batch) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], decoder_input_ids=batch["decoder_input_ids"]).logits

    def loss(self, model, batch) -> torch.Tensor:
        logits = self.logits(model, batch)
        # Sum, not mean: the engine divides by the target tokens of the whole accumulation window.
        return F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), reduction="sum")

    def logits_and_targets(self, model, batch):
        return self.logits(model, batch).float().flatten(0, 1), batch["labels"].flatten()

    def eval_step(self, model, batch) -> dict:
        logits, labels = self.logits_and_targets(model, batch)
        # accuracy over the dropped tokens only: sentinels and </s> come in a fixed order and would flatter it
        text = ~torch.isin(labels, torch.as_tensor(np.append(self.sentinels, self.eos), device=labels.device))
        hits = (logits.argmax(-1) == labels) & text
        return {"loss_sum": F.cross_entropy(logits, labels, reduction="sum").item(), "count": int(labels.numel()),
                "span_hits": int(hits.sum()), "span_tokens": int(text.sum())}

    def compute_metrics(self, totals) -> dict:
        m = token_loss(totals["loss_sum"], int(totals["count"]))
        return {"loss": m["loss"], "perplexity": m["perplexity"],
                "span_accuracy": totals["span_hits"] / max(int(totals["span_tokens"]), 1), "target_tokens": int(totals["count"])}


def _text_recipe(recipe, plan: Plan):
    """The recipe with data.block_size = the text tokens per example (the token-stream cache is shared with clm / mlm)."""
    return recipe.model_copy(update={"data": recipe.data.model_copy(update={"block_size": plan.text})})


def _blocks(recipe, plan: Plan, tokenizer, log):
    return lm_blocks.cached_blocks(_text_recipe(recipe, plan), tokenizer, log)


def make_task(recipe, tokenizer, model, key: str) -> SpanCorruption:
    span = recipe.span
    plan = Plan.fill(recipe.data.block_size, span.noise_density, span.mean_noise_span_length)
    sentinels = sentinel_ids(tokenizer, plan.spans, key)
    eos, start = special_ids(model, tokenizer, key)
    return SpanCorruption(plan, sentinels, eos, start)


def describe(plan: Plan) -> str:
    return (f"span corruption | {plan.text} text tokens per example -> encoder input {plan.inputs} (kept tokens, "
            f"{plan.spans} sentinels, </s>), decoder target {plan.targets} ({plan.noise} dropped tokens in {plan.spans} spans)")


def build_model(recipe, tokenizer, log):
    model = build(recipe, tokenizer, SPAN_CORRUPTION)
    _, total = count_parameters(model)
    origin = "random weights" if recipe.model.model_type else f"from {recipe.model.from_pretrained}"
    log(f"model: {type(model).__name__} ({total / 1e6:.2f}M parameters), {origin}")
    return model


def prepare(recipe, tokenizer, accelerator, log) -> Prepared:
    key = tokenizer_key(recipe)
    span = recipe.span
    plan = Plan.fill(recipe.data.block_size, span.noise_density, span.mean_noise_span_length)
    sentinel_ids(tokenizer, plan.spans, key)  # before the model and minutes of tokenizing
    model = build_model(recipe, tokenizer, log)
    task = make_task(recipe, tokenizer, model, key)
    check_metric(recipe.train, task)
    with accelerator.main_process_first():  # the main process tokenizes and caches, the others read the cache
        train, val = _blocks(recipe, plan, tokenizer, log)
    if recipe.data.streaming:
        train = lm_blocks.streamed_blocks(_text_recipe(recipe, plan), tokenizer, accelerator.process_index,
                                          accelerator.num_processes)
    log(describe(plan))
    # no block_tokens: the decoder sees fewer tokens than the encoder, so 6N per input token would overstate FLOPs
    return Prepared(model, task, train, val, tokenizer, seq_len=plan.inputs, eval_seed=span.eval_seed,
                    stream=recipe.data.streaming, unit=f"blocks of {plan.text} text tokens",
                    summary={"input_length": plan.inputs, "target_length": plan.targets, "text_tokens_per_example": plan.text,
                             "spans_per_example": plan.spans})


def evaluation(req: EvalRequest) -> EvalSetup:
    """Loss, perplexity and span accuracy on a file (`--data`, read as the recipe's training data) or the recipe's
    held-out data; the spans are drawn from span.eval_seed, so two evaluations of one model agree."""
    task = make_task(req.recipe, req.preprocessor, req.model, "--model")
    task.check_model(req.model)
    from_file = req.data is not None or req.split == "train"
    train, val = _blocks(req.recipe, task.plan, req.preprocessor, req.log)
    chosen: Optional[np.ndarray] = train if from_file else val
    if chosen is None:
        raise UserError("--data: the model's recipe has no validation data; pass a file to evaluate on")
    pick = sample_positions(len(chosen), req.sample)
    return EvalSetup(task, chosen if pick is None else [chosen[int(i)] for i in pick], req.recipe.span.eval_seed,
                     {"input_length": task.plan.inputs, "target_length": task.plan.targets})


SPEC = TaskSpec(SPAN_CORRUPTION, prepare=prepare, evaluation=evaluation)
