"""Sequence-to-sequence (task seq2seq): the engine Task and SPEC (prepare, evaluation, render, corpus, predict).

Training: the labels are the target's ids padded with -100 (DataCollatorForSeq2Seq); the decoder reads them shifted
right behind the model's start token; the loss is the cross-entropy summed over the target tokens (label
smoothing from the recipe), which the engine divides by the targets of the whole accumulation window.
Evaluation: the loss, then the sources are decoded with model.generate (greedy or beam search, the recipe's
generation section) and eval_step returns the texts with their example numbers: the engine gathers them across
ranks in global batch order, and compute_metrics scores them against the references (BLEU / chrF or ROUGE), so
N processes score what 1 process does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.task_api import TaskBase
from ftkit.errors import UserError
from ftkit.models import encoder_decoder as ed
from ftkit.models.anatomy import unwrap
from ftkit.models.build import build_model as build
from ftkit.models.build import check_model_path, count_parameters
from ftkit.models.encoder_decoder import is_encoder_decoder
from ftkit.paths import resolve_package_path
from ftkit.tasks.family import Encoded, Family
from ftkit.tasks.seq2seq import data
from ftkit.tasks.seq2seq import metrics as gen_metrics
from ftkit.tasks.seq2seq.encode import encode
from ftkit.tasks.seq2seq.entry import SEQ2SEQ
from ftkit.tasks.seq2seq.section import Seq2SeqSection
from ftkit.tasks.spec import EvalRequest, fresh_file, write_outputs
from ftkit.wording import with_article


class Seq2Seq(TaskBase):
    name = "seq2seq"
    keep_best = True

    def __init__(self, tokenizer, s2s, decoder_start: int, references: Optional[list[str]] = None, generate: bool = True):
        from transformers import DataCollatorForSeq2Seq

        self.tokenizer, self.s2s, self.references, self.generate = tokenizer, s2s, references, generate
        self.pad_id, self.decoder_start = int(tokenizer.pad_token_id), int(decoder_start)
        self.metrics = gen_metrics.headline(s2s.metric)
        self.pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, return_tensors="pt")
        self.last_predictions: dict[int, str] = {}  # the last evaluation's outputs by example number (`ftkit eval` writes them)

    def collate(self, examples: list, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Dynamic padding: sources with the pad token (attention mask 0), labels with -100 (no loss)."""
        feats = [{"input_ids": e["input_ids"].tolist(), "attention_mask": [1] * len(e["input_ids"]), "labels": e["labels"].tolist()}
                 for e in examples]
        batch = dict(self.pad(feats))
        batch["index"] = torch.tensor([e["index"] for e in examples], dtype=torch.long)
        return batch

    def count_targets(self, batch) -> int:
        return int((batch["labels"] != -100).sum())

    def count_tokens(self, batch) -> int:
        """Source plus target tokens (padding excluded): what tokens/s counts."""
        return int(batch["attention_mask"].sum()) + self.count_targets(batch)

    def decoder_inputs(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels shifted right behind the start token, -100 as pad (transformers' shift_tokens_right)."""
        start = torch.full_like(labels[:, :1], self.decoder_start)
        shifted = torch.cat([start, labels[:, :-1]], dim=1)
        return shifted.masked_fill(shifted == -100, self.pad_id)

    def logits(self, model, batch) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     decoder_input_ids=self.decoder_inputs(batch["labels"]), use_cache=False).logits

    def loss(self, model, batch) -> torch.Tensor:
        logits = self.logits(model, batch)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100, reduction="sum",
                               label_smoothing=self.s2s.label_smoothing)

    def logits_and_targets(self, model, batch):
        keep = batch["labels"] != -100
        return self.logits(model, batch)[keep].float(), batch["labels"][keep]

    def generate_ids(self, model, batch) -> torch.Tensor:
        """Greedy / beam search. On CPU outside bf16 autocast: a decode step is many small matmuls, and casting each
        to bf16 made evaluation 1.7x slower than fp32 (bench/peers/seq2seq_vs_hf.py; run_translation generates in fp32)."""
        import contextlib

        g = self.s2s.generation
        eos = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.sep_token_id
        cpu = batch["input_ids"].device.type == "cpu"
        with torch.autocast("cpu", enabled=False) if cpu else contextlib.nullcontext():
            return unwrap(model).generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=False, num_beams=g.num_beams,
                max_new_tokens=g.max_new_tokens, length_penalty=g.length_penalty, no_repeat_ngram_size=g.no_repeat_ngram_size,
                decoder_start_token_id=self.decoder_start, pad_token_id=self.pad_id, eos_token_id=eos)

    def decode(self, ids: torch.Tensor) -> list[str]:
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def eval_step(self, model, batch) -> dict:
        logits = self.logits(model, batch)
        out = {"loss_sum": F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100,
                                           reduction="sum").item(), "count": self.count_targets(batch)}
        if self.generate:
            ids = self.generate_ids(model, batch)
            out["prediction"] = self.decode(ids)
            special = torch.tensor(sorted(self.tokenizer.all_special_ids), device=ids.device)
            out["gen_len"] = (~torch.isin(ids, special)).sum(1).cpu().numpy()
            out["index"] = batch["index"].cpu().numpy()
        return out

    def compute_metrics(self, totals) -> dict:
        out = {"loss": float(totals.get("loss_sum", 0.0)) / max(int(totals.get("count", 0)), 1)}
        predictions = list(totals.get("prediction", []))
        if predictions:
            index = np.asarray(totals["index"]).tolist()
            refs = [self.references[i] for i in index]
            out = {**gen_metrics.score(self.s2s.metric, predictions, refs, self.s2s.lowercase_metric), **out,
                   "gen_len": float(np.mean(totals["gen_len"])), "examples": len(predictions)}
            self.last_predictions = dict(zip(index, predictions))
        return out

    def nothing_learned(self, metrics: dict) -> Optional[str]:
        key = next(iter(self.metrics))
        if key not in metrics or metrics[key] > 0:
            return None
        return f"the generated texts score {key} 0 on {metrics.get('examples', 0):,} validation examples"


def build_model(recipe, tokenizer, log):
    """AutoModelForSeq2SeqLM from a config (T5, BART, Marian, ...), a saved directory or hub id, or an
    EncoderDecoderModel warm-started from two encoders; its special ids from the tokenizer."""
    from transformers import AutoConfig

    m, s2s = recipe.model, recipe.seq2seq
    if s2s.warm_start_decoder is not None:
        if m.from_pretrained is None:
            raise UserError("seq2seq.warm_start_decoder: warm starting needs model.from_pretrained (the encoder checkpoint)")

        enc = check_model_path(m.from_pretrained)
        dec = check_model_path(resolve_package_path(s2s.warm_start_decoder, "seq2seq.warm_start_decoder"), "seq2seq.warm_start_decoder")
        model = ed.warm_start(enc, dec, recipe.train.dropout)
        origin = f"warm-started from {m.from_pretrained} (encoder) and {s2s.warm_start_decoder} (decoder)"
    else:
        if m.from_pretrained is not None:
            cfg = AutoConfig.from_pretrained(check_model_path(m.from_pretrained), trust_remote_code=m.trust_remote_code)
            if not ed.is_encoder_decoder(cfg):
                raise UserError(f"model.from_pretrained: {m.from_pretrained} is {with_article(cfg.model_type)} model, not an encoder-decoder; "
                                "task seq2seq needs T5, BART, Marian, ... (or seq2seq.warm_start_decoder to build one from two encoders)")
        else:
            cfg = AutoConfig.for_model(m.model_type) if m.model_type else None
            if cfg is not None and not ed.is_encoder_decoder(cfg):
                raise UserError(f"model.model_type: '{m.model_type}' is not an encoder-decoder; task seq2seq needs t5, bart, marian, ...")
        model = build(recipe, tokenizer, SEQ2SEQ, **_positions(recipe))
        origin = "random weights" if m.model_type else f"from {m.from_pretrained}"
    ids = ed.special_ids(model.config, tokenizer)
    model.generation_config.update(**ids, **generation_settings(fit_positions(s2s, model.config)))
    _, total = count_parameters(model)
    log(f"model: {type(model).__name__} ({total / 1e6:.2f}M parameters), {origin}; decoding starts from "
        f"{tokenizer.convert_ids_to_tokens(ids['decoder_start_token_id'])!r}, pad {tokenizer.pad_token!r}, "
        f"ends at {tokenizer.convert_ids_to_tokens(ids['eos_token_id'])!r}")
    return model


def fit_positions(s2s, config, log=None):
    """The seq2seq section with its length caps (and max_new_tokens) within the model's learned positions (BART's,
    a warm-started BERT's; T5's relative positions have no limit), said once when one is lowered."""
    enc = getattr(getattr(config, "encoder", config), "max_position_embeddings", None)
    dec = getattr(getattr(config, "decoder", config), "max_position_embeddings", None)
    changes = {}
    if enc and s2s.max_source_length > enc:
        changes["max_source_length"] = enc
    if dec and s2s.max_target_length > dec:
        changes["max_target_length"] = dec
    gen = s2s.generation
    if dec and gen.max_new_tokens >= dec:
        gen = gen.model_copy(update={"max_new_tokens": dec - 1})
        changes["generation"] = gen
    if changes and log is not None:
        log("seq2seq: lengths capped by the model's positions: "
            + ", ".join(f"{k} {v if k != 'generation' else f'max_new_tokens {gen.max_new_tokens}'}" for k, v in changes.items()))
    return s2s.model_copy(update=changes) if changes else s2s


def generation_settings(s2s) -> dict:
    """The recipe's decoding, as generation_config.json keeps it (max_length None: never transformers' 20 tokens)."""
    g = s2s.generation
    return {"num_beams": g.num_beams, "max_new_tokens": g.max_new_tokens, "length_penalty": g.length_penalty,
            "no_repeat_ngram_size": g.no_repeat_ngram_size, "do_sample": False, "max_length": None}


def _positions(recipe) -> dict:
    """A new model's positions cover the longer of the two length caps (BART's learned positions)."""
    s2s = recipe.seq2seq
    need = max(s2s.max_source_length, s2s.max_target_length)
    if recipe.model.model_type and "max_position_embeddings" not in recipe.model.config and need > recipe.data.block_size:
        return {"max_position_embeddings": need}
    return {}


def _writer(req: EvalRequest, task: Seq2Seq, pairs):
    """After the metrics: one JSON line per example {source, reference, prediction}, in the data's order, beside the
    model (or at --generations), never over an existing file."""
    def write(result: dict) -> None:
        if req.generations:
            path = Path(req.generations)
        else:
            stem = Path(str(req.data).split(",")[0]).name.split(".")[0] if req.data else "validation"
            path = fresh_file(req.path, f"predictions-{stem}", ".jsonl")
        rows = [{"source": pairs.sources[i], "reference": pairs.targets[i], "prediction": p}
                for i, p in sorted(task.last_predictions.items())]
        write_outputs(req, result, path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      f"{len(rows):,} outputs, JSON lines {{source, reference, prediction}}")

    return write


def render(r: dict) -> str:
    rows = [("model", r["model"]), ("data", r["data"]), ("pairs", f"{r.get('examples', r.get('pairs', 0)):,}")]
    for k, label in (("bleu", "BLEU"), ("chrf", "chrF"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"),
                     ("rougeLsum", "ROUGE-Lsum")):
        if k in r:
            rows.append((label, f"{r[k]:.2f}"))
    rows += [("loss", f"{r['loss']:.4f}")] + ([("generated length", f"{r['gen_len']:.1f} tokens")] if "gen_len" in r else [])
    rows += [("signature", r.get("signature", ""))] + ([("predictions", r["predictions"])] if "predictions" in r else [])
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


@dataclass(frozen=True)
class Head:
    s2s: Seq2SeqSection  # the recipe's section, its lengths within the model's positions
    start: int  # decoder_start_token_id


class Sequence2Sequence(Family[data.Pairs]):
    """Source -> target pairs -> an encoder-decoder -> encoded pairs; evaluation generates, and scores the texts."""

    entry = SEQ2SEQ
    unit = "source -> target pairs, length-grouped"

    def read(self, source, recipe, key, log):
        return data.load(source, recipe.data, recipe.seq2seq, key)

    def split(self, run):
        return data.train_and_validation(run.recipe.data, run.recipe.seq2seq, run.recipe.train.seed)

    def build(self, run):
        model = build_model(run.recipe, run.tokenizer, run.log)
        return model, Head(fit_positions(run.recipe.seq2seq, model.config, run.log), model.config.decoder_start_token_id)

    def recognise(self, run):
        if not is_encoder_decoder(run.model.config):
            raise UserError(f"--model: {run.request.model_dir} is not an encoder-decoder model; fine-tune one with `ftkit finetune --task seq2seq`")
        return Head(fit_positions(run.recipe.seq2seq, run.model.config), run.model.config.decoder_start_token_id)

    def make_task(self, run, gold):
        return Seq2Seq(run.tokenizer, run.head.s2s, run.head.start, gold.targets if gold is not None else None)

    def encode(self, run, rows, part):
        enc = encode(rows, run.tokenizer, run.head.s2s, run.head.start, train=part == "train")
        summary = {"train_pairs_truncated": enc.truncated, "train_pairs_skipped": enc.skipped} if part == "train" else {}
        return Encoded(enc.items, f"{enc.describe(part)} from {rows.origin}", summary)

    def describe(self, run):
        s2s, g = run.head.s2s, run.head.s2s.generation
        return (f"seq2seq | sources up to {s2s.max_source_length} tokens, targets up to {s2s.max_target_length} | evaluation: "
                f"{'greedy' if g.num_beams == 1 else f'beam search ({g.num_beams} beams)'}, up to {g.max_new_tokens} new tokens, "
                f"{gen_metrics.signature(s2s.metric, s2s.lowercase_metric)}",)

    def seq_len(self, run):
        return run.head.s2s.max_source_length

    def summary(self, run):
        s2s = run.head.s2s
        return {"metric_signature": gen_metrics.signature(s2s.metric, s2s.lowercase_metric)}

    def eval_extras(self, run):
        s2s = run.head.s2s
        return {"pairs": len(run.val), "signature": gen_metrics.signature(s2s.metric, s2s.lowercase_metric)}

    def finish(self, run):
        return _writer(run.request, run.task, run.val)

    @staticmethod
    def corpus(recipe):
        """What a new tokenizer trains on: both sides of the training pairs (one joint vocabulary, as T5 and the
        Transformer's shared source-target BPE), the prefix left out."""
        pairs = data.load(recipe.data.train, recipe.data, recipe.seq2seq, "data.train")
        return datasets.Dataset.from_dict({recipe.data.text_column: pairs.sources + pairs.targets})

    @staticmethod
    def predict(req):
        from ftkit.tasks.seq2seq.predict import predict  # predict.py imports this module (Seq2Seq)

        return predict(req)

    render = staticmethod(render)


SPEC = Sequence2Sequence()
