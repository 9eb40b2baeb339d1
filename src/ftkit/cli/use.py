"""Commands that use a trained model: `eval`, `generate`, `predict`, `chat`.

Each command imports its workflow (and ftkit's torch-side modules) when it runs, not here: `ftkit --help` and
recipe checks start without torch (tests/workflows/test_gpt_cli.py asserts it)."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from ftkit import registry
from ftkit.cli.apps import (
    DelimOpt,
    NamesOpt,
    PairColOpt,
    SystemOpt,
    TextColOpt,
    _columns,
    _data_options,
    _delimiter,
    _offline_defaults,
    app,
    log,
    with_launch,
)
from ftkit.errors import UserError
from ftkit.launch import Launch


@app.command("eval")
@with_launch
def eval_(model: str = typer.Option(..., "--model", "-m", help="A saved model directory (an ftkit output_dir)."),
          data: Optional[str] = typer.Option(None, "--data", help="Evaluation file (default: the validation data of the model's recipe)."),
          task: Optional[str] = typer.Option(None, "--task", help=f"The model's task: {', '.join(registry.NAMES)} (default: from the model's config)."),
          batch_size: int = typer.Option(8, "--batch-size", min=1),
          block_size: Optional[int] = typer.Option(None, "--block-size", min=1, help="Sequence length (default: the recipe's)."),
          max_batches: Optional[int] = typer.Option(None, "--max-batches", min=1),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
          text_column: Optional[str] = TextColOpt, pair_column: Optional[str] = PairColOpt,
          label_column: Optional[str] = typer.Option(None, "--label-column", help="Column with the label (cls; default: the recipe's)."),
          column_names: Optional[str] = NamesOpt, delimiter: Optional[str] = DelimOpt,
          encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of the file (default: the recipe's data.encoding, utf-8)."),
          data_option: Optional[List[str]] = typer.Option(None, "--data-option", "-D", help="Another data.* setting for "
                                                         "this file, KEY=VALUE, or a family section's, SECTION.KEY=VALUE (e.g. "
                                                         "-D ner.tag_field=3 -D format=conll); repeatable."),
          plot: Optional[str] = typer.Option(None, "--plot", help="cls: where to write the confusion-matrix PNG "
                                             "(default: MODEL/confusion_matrix_<data file stem>.png)."),
          generate_: bool = typer.Option(False, "--generate", help="sft: generate replies (greedy) and score the extracted "
                                         "answers by exact match, instead of the loss (default data: the recipe's sft.eval_data)."),
          generations: Optional[str] = typer.Option(None, "--generations", help="sft --generate: where the replies go "
                                                    "(JSONL; default: MODEL/generations-<data file stem>.jsonl)."),
          recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Take the evaluation data and settings from "
                                               "this recipe instead of the model's own (e.g. to score a fine-tuning "
                                               "recipe's starting point)."),
          precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 or auto (bf16 autocast where the CPU/GPU "
                                        "supports it: faster generation)."), *, launch: Launch) -> None:
    """Evaluate a saved model: loss and perplexity for language models (sft: over the assistant tokens; with
    --generate, exact match of generated answers); accuracy, macro-F1, MCC, per-class precision/recall and the
    confusion matrix (also as a PNG) for classifiers; entity P/R/F1 for ner."""
    _offline_defaults()
    from ftkit.workflows import evaluate as wf

    if precision not in ("fp32", "bf16", "fp16", "auto"):
        raise UserError(f"--precision: '{precision}'; expected fp32, bf16, fp16 or auto")
    if launch.wanted:  # each rank scores its share of the batches; the main one prints the metrics of them all
        from ftkit.launch import relaunch
        from ftkit.models.saved import check_dir

        check_dir(model, "--model")  # a wrong path: one line here, not one per rank
        raise typer.Exit(relaunch(launch, sys.argv[1:], log=log))
    metrics = wf.run(model, data=data, task=task, batch_size=batch_size, block_size=block_size,
                     max_batches=max_batches, log=log, plot=plot, generate=generate_, generations=generations,
                     precision=precision, recipe=recipe,
                     data_overrides={**_columns(text_column, pair_column, label_column, column_names),
                                     **_delimiter(delimiter), **({"encoding": encoding} if encoding else {}),
                                     **_data_options(data_option)})
    if metrics is not None:  # None: a rank other than the main one
        typer.echo(json.dumps(metrics) if as_json else wf.render(metrics))


@app.command()
def generate(model: str = typer.Option(..., "--model", "-m", help="A saved causal LM directory."),
             prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue (default: start of text)."),
             max_new_tokens: int = typer.Option(200, "--max-new-tokens", min=1),
             temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="0 = greedy."),
             top_k: Optional[int] = typer.Option(200, "--top-k", min=1),
             top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0),
             seed: int = typer.Option(1337, "--seed"),
             num_samples: int = typer.Option(1, "--num-samples", min=1),
             chat: bool = typer.Option(False, "--chat", help="Send --prompt as a user turn through the model's chat "
                                       "template and print the assistant's reply (streamed)."),
             system: Optional[str] = SystemOpt,
             repetition_penalty: Optional[float] = typer.Option(
                 None, "--repetition-penalty", help="Divide the scores of tokens already in the text by this (1 = off). "
                 "Default: 1 (off); with --chat, ftkit chat's 1.1."),
             no_repeat_ngram_size: int = typer.Option(0, "--no-repeat-ngram-size", help="Never repeat an n-gram of this "
                                                      "many tokens (0 = off, the default).")) -> None:
    """Sample text from a trained causal LM (with --chat: one reply of a chat model)."""
    _offline_defaults()
    if chat:
        from ftkit.workflows.chat import REPETITION_PENALTY, Session

        if not prompt:
            raise UserError("--chat: give the user's message with --prompt")
        session = Session(model, system=system, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          seed=seed, log=log, no_repeat_ngram_size=no_repeat_ngram_size,
                          repetition_penalty=REPETITION_PENALTY if repetition_penalty is None else repetition_penalty)
        session.reply(prompt, sys.stdout)
        return
    if system is not None:
        raise UserError("--system: only with --chat (a system turn goes through the chat template)")
    from ftkit.workflows import generate as wf

    samples = wf.run(model, prompt=prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                     top_p=top_p, seed=seed, num_samples=num_samples, no_repeat_ngram_size=no_repeat_ngram_size,
                     repetition_penalty=1.0 if repetition_penalty is None else repetition_penalty)
    typer.echo("\n---\n".join(samples))


@app.command()
def predict(model: str = typer.Option(..., "--model", "-m", help="A saved classifier directory."),
            source: Optional[list[str]] = typer.Argument(None, metavar="[FILE...|-]", help="Text lines (pairs: TAB-separated), "
                                                         "or a csv/tsv/json/jsonl/parquet file; image models: image files "
                                                         "and folders; - or nothing: stdin (image models: one path per line)."),
            text_column: Optional[str] = TextColOpt, pair_column: Optional[str] = PairColOpt,
            column_names: Optional[str] = NamesOpt, delimiter: Optional[str] = DelimOpt,
            batch_size: int = typer.Option(32, "--batch-size", min=1),
            all_scores: bool = typer.Option(False, "--all-scores", help="Add every class's probability."),
            encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of FILE (default: the recipe's data.encoding, utf-8)."),
            fmt: str = typer.Option("auto", "--format", help="ner models: text (one input per line) or conll "
                                    "(append a predicted-tag column); auto: conll for .conll/.iob/.bio files."),
            context: Optional[str] = typer.Option(None, "--context", help="qa models: a text file holding the context; "
                                                  "the questions come one per line (FILE or stdin) instead of JSON lines "
                                                  "{\"question\", \"context\"}.")) -> None:
    """Classify texts or images: one JSON line per input, {"line" or "row" or "image": ..., "label": ..., "probability": ...}.
    Token classifiers (ner): {"line": n, "entities": [{text, type, start, end, score}]} per line, or a CoNLL file
    with a predicted-tag column. Question answering (qa): JSON lines {"question", "context"} in (or --context FILE
    and one question per line), {"line": n, "answer", "score", "start", "end"} out (context[start:end] == answer).
    An image that cannot be read gets "error: FILE: why" on stderr, the others are answered, and the exit code is 3
    (2: none could be read)."""
    _offline_defaults()
    from ftkit.tasks.spec import Skipped
    from ftkit.workflows import predict as wf

    cols = _columns(text_column, pair_column, None, column_names)
    if fmt not in ("auto", "text", "conll"):
        raise UserError(f"--format: '{fmt}'; expected auto, text or conll")
    for result in wf.run(model, source, cols.get("text_column"), cols.get("text_pair_column"), cols.get("column_names"),
                         batch_size=batch_size, all_scores=all_scores, fmt=fmt, encoding=encoding,
                         delimiter=_delimiter(delimiter).get("delimiter"), context=context):
        if isinstance(result, Skipped):
            typer.echo(f"error: {result.input}: {result.why}", err=True)
            continue
        typer.echo(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))


@app.command()
def chat(model: str = typer.Option(..., "--model", "-m", help="A chat model directory (sft output, merged model or LoRA adapter)."),
         system: Optional[str] = SystemOpt,
         max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
         temperature: float = typer.Option(0.2, "--temperature", min=0.0, help="0 = greedy."),
         top_p: Optional[float] = typer.Option(0.9, "--top-p", min=0.0, max=1.0),
         seed: int = typer.Option(1337, "--seed"),
         repetition_penalty: Optional[float] = typer.Option(
             None, "--repetition-penalty", help="Divide the scores of tokens already in the conversation by this "
             "(1 = off; default 1.1, which keeps small models from looping)."),
         no_repeat_ngram_size: int = typer.Option(0, "--no-repeat-ngram-size", help="Never repeat an n-gram of this "
                                                  "many tokens (0 = off, the default; it also forbids wanted repeats).")) -> None:
    """Chat with a model in the terminal: its chat template, replies streamed as they come; /reset, /exit."""
    _offline_defaults()
    from ftkit.workflows.chat import REPETITION_PENALTY, Session, interactive

    session = Session(model, system=system, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                      seed=seed, log=log, no_repeat_ngram_size=no_repeat_ngram_size,
                      repetition_penalty=REPETITION_PENALTY if repetition_penalty is None else repetition_penalty)
    interactive(session, sys.stdin, sys.stdout, log=log)


