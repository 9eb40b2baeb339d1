"""`ftkit predict` (and `ftkit generate`) with an encoder-decoder: translate or summarize each input.

In: text lines (a file, `-` or stdin; a .gz file is read directly), or a table (.jsonl .json .csv .tsv .parquet)
whose source column is the recipe's seq2seq.source_column (or --text-column). The recipe's source prefix is put
before each input; decoding follows the model's generation_config.json (the recipe's generation section: greedy
or beam search, max_new_tokens). Out: one JSON object per input, {"line" or "row", "prediction"}; with
`--format text`, the outputs alone, one per line (an empty input gets an empty line), ready to paste beside
the inputs or to score with sacrebleu.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from ftkit.data.inputs import CHUNK, TABLES, empty, lines, plain_inputs, table_inputs
from ftkit.errors import UserError
from ftkit.models.encoder_decoder import is_encoder_decoder
from ftkit.recipe.schema import DataSection
from ftkit.tasks.seq2seq.data import read_lines
from ftkit.tasks.seq2seq.section import Seq2SeqSection
from ftkit.tasks.seq2seq.task import Seq2Seq, fit_positions


def translate(model, tokenizer, s2s, texts: list[str], batch_size: int = 32) -> list[str]:
    """Outputs of `texts`, in order (batched by length: little padding)."""
    import torch

    task = Seq2Seq(tokenizer, s2s, model.config.decoder_start_token_id, generate=True)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: dict[int, str] = {}
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            enc = tokenizer([s2s.source_prefix + texts[i] for i in idx], truncation=True, max_length=s2s.max_source_length,
                            padding=True, return_tensors="pt")
            ids = task.generate_ids(model, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
            out.update(zip(idx, task.decode(ids)))
    return [out[i] for i in range(len(texts))]


def settings(req):
    """The recipe's seq2seq section with the decoding of the saved generation_config.json."""
    s2s = fit_positions(req.recipe.seq2seq if req.recipe is not None else Seq2SeqSection(), req.model.config)
    g = getattr(req.model, "generation_config", None)
    if g is not None:
        gen = s2s.generation.model_copy(update={k: getattr(g, k) for k in ("num_beams", "length_penalty", "no_repeat_ngram_size")
                                                if getattr(g, k, None) is not None})
        if getattr(g, "max_new_tokens", None):
            gen = gen.model_copy(update={"max_new_tokens": g.max_new_tokens})
        s2s = s2s.model_copy(update={"generation": gen})
    return s2s


def predict(req) -> Iterator:
    if not is_encoder_decoder(req.model.config):
        raise UserError(f"--model: {req.model_dir} is not an encoder-decoder; fine-tune one with `ftkit finetune --task seq2seq`")
    if req.fmt not in ("auto", "text"):
        raise UserError(f"--format: '{req.fmt}'; seq2seq models write JSON lines (auto) or plain text lines (text)")
    s2s = settings(req)
    model, tokenizer, source = req.model.eval(), req.preprocessor, req.source
    encoding = req.encoding or (req.recipe.data.encoding if req.recipe is not None else "utf-8")
    if source not in (None, "-") and not Path(source).is_file():
        raise UserError(f"FILE: not found: {source}")
    if source not in (None, "-") and Path(source.removesuffix(".gz")).suffix.lower() in TABLES:
        data = (req.recipe.data if req.recipe is not None else DataSection(train="-")).model_copy(
            update={"text_column": req.text_column or s2s.source_column, "column_names": req.column_names, "header": "auto",
                    "delimiter": req.delimiter, "format": "auto", "encoding": encoding})
        inputs = table_inputs(source, data, False)
    elif source not in (None, "-") and source.endswith(".gz"):
        inputs = plain_inputs(read_lines(source, encoding), False, source)
    else:
        inputs = plain_inputs(lines(source, req.stdin, encoding), False, source or "<stdin>")
    while True:
        chunk = list(islice(inputs, CHUNK))
        if not chunk:
            return
        todo = [i for i, (_, text, _) in enumerate(chunk) if not empty(text)]
        outputs = dict(zip(todo, translate(model, tokenizer, s2s, [chunk[i][1] for i in todo], req.batch_size)))
        for i, (where, _, _) in enumerate(chunk):
            text = outputs.get(i, "")
            yield text if req.fmt == "text" else {**where, "prediction": text}

