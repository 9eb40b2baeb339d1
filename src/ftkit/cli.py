"""The `ftkit` command line. Thin: parse flags, load the recipe, call one workflow.

Heavy libraries (torch, transformers, datasets) are imported inside the commands so that
`ftkit --help` answers at once. Bad input raises UserError: one line on stderr, exit 2,
no traceback unless --debug. Logs go to stderr; stdout carries results (--json, predictions).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ftkit import registry  # task names for the help (no heavy imports)
from ftkit.errors import NothingToDo, PartialFailure, UserError
from ftkit.launch import PEER_STOPPED, peer_stopped, rank_prefix
from ftkit.wording import with_article

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Develop Transformer language models from zero: tokenize, pre-train, fine-tune, evaluate.")
recipes_app = typer.Typer(no_args_is_help=True, help="List, show, validate and document recipes.")
app.add_typer(recipes_app, name="recipes")
compress_app = typer.Typer(no_args_is_help=True, help="Compress a model: int8 quantization, pruning, distillation.")
app.add_typer(compress_app, name="compress")

_state = {"debug": False}
RecipeOpt = typer.Option(..., "--recipe", "-r", help="Recipe YAML file, or the name of a shipped recipe (ftkit recipes list).")
OverridesArg = typer.Argument(None, help="Overrides: dotted.key=value ... (e.g. train.lr=3e-4 data.block_size=128)")
PrintOpt = typer.Option(False, "--print-config", help="Print the fully resolved recipe (every default) and exit.")
ResumeOpt = typer.Option(False, "--resume", help="Continue the run in output_dir from its latest checkpoint.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Move an earlier run in output_dir aside (never deleted) and start anew.")
# Launch flags (Accelerate's meaning): processes in total over all machines.
NumProcOpt = typer.Option(None, "--num-processes", min=1, help="Processes in total (all machines); >1 launches through Accelerate.")
NumMachOpt = typer.Option(1, "--num-machines", min=1, help="Machines taking part.")
MachRankOpt = typer.Option(0, "--machine-rank", min=0, help="This machine's rank (0 = the main one).")
MainIpOpt = typer.Option(None, "--main-process-ip", help="Address of machine rank 0.")
MainPortOpt = typer.Option(None, "--main-process-port", min=1, max=65535, help="Port on machine rank 0.")
AccCfgOpt = typer.Option(None, "--accelerate-config", help="An Accelerate config file (e.g. recipes/launch/fsdp.yaml).")
SystemOpt = typer.Option(None, "--system", help="A system prompt for the conversation (default: the one the model was "
                         "trained with, data.system_prompt, when training had one; --system '' for none).")
KeepEndOpt = typer.Option(None, "--keep-checkpoints-at-end", min=0, help="Resumable checkpoints to keep once the run "
                          "has finished (train.keep_checkpoints_at_end; default 1, 0: only the final model).")


def log(message: str) -> None:
    typer.echo(message, err=True)


def _recipe(path: Path, overrides: Optional[List[str]], print_config: bool):
    from ftkit.recipe import dump_recipe, load_recipe, packaged

    recipe = load_recipe(packaged.find(str(path)), overrides or [])
    if print_config:
        typer.echo(dump_recipe(recipe), nl=False)
        raise typer.Exit(0)
    return recipe


def _keep(n: Optional[int]) -> list[str]:
    return [] if n is None else [f"train.keep_checkpoints_at_end={n}"]


def _offline_defaults() -> None:
    # Local files must not ping the hub's download counter; hub loads stay possible when online.
    os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def _print_version(value: bool) -> None:
    # eager: answered while the options are parsed, so `ftkit --version` needs no command
    if value:
        from ftkit import __version__

        typer.echo(f"ftkit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                       callback=_print_version)) -> None:
    _state["debug"] = debug


@app.command()
def tokenize(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
             encode: bool = typer.Option(False, "--encode", help="Also tokenize the corpus into the packed cache that pretrain reuses."),
             overwrite: bool = typer.Option(False, "--overwrite", help="Move an existing tokenizer at tokenizer.path aside.")) -> None:
    """Train the recipe's tokenizer (bpe, wordpiece, unigram, char) and print its statistics."""
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import tokenize as wf

    wf.run(r, encode=encode, overwrite=overwrite, log=log)


@app.command(help=f"Pre-train a model as the recipe describes; its task is one of: "
                  f"{'; '.join(f'{t.name}: {t.help}' for t in registry.TASKS if t.family == registry.PRETRAIN)} "
                  "(every key: ftkit recipes docs).")
def pretrain(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
             resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt,
             num_processes: Optional[int] = NumProcOpt, num_machines: int = NumMachOpt, machine_rank: int = MachRankOpt,
             main_process_ip: Optional[str] = MainIpOpt, main_process_port: Optional[int] = MainPortOpt,
             accelerate_config: Optional[str] = AccCfgOpt, keep_at_end: Optional[int] = KeepEndOpt) -> None:
    r = _recipe(recipe, [*(overrides or []), *_keep(keep_at_end)], print_config)
    _offline_defaults()
    from ftkit.launch import Launch

    launch = Launch(num_processes, num_machines, machine_rank, main_process_ip, main_process_port, accelerate_config)
    if launch.wanted:
        _launch(launch, r, resume, overwrite)
    from ftkit.workflows import train as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log, family=registry.PRETRAIN)


def _launch(launch, recipe, resume: bool, overwrite: bool) -> None:
    """Check what can be checked here (before any rank starts), then run this command on all ranks; exit with their code."""
    from ftkit.launch import relaunch
    from ftkit.workflows.preflight import preflight

    preflight(recipe, resume=resume, overwrite=overwrite, log=log)
    raise typer.Exit(relaunch(launch, sys.argv[1:], log=log))


@app.command(help="Fine-tune (or train from scratch) a model for a downstream task: "
                  f"{'; '.join(f'{t.name} = {t.help}' for t in registry.TASKS if t.family == registry.FINETUNE)}.")
def finetune(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg,
             task: Optional[str] = typer.Option(None, "--task", help=f"A fine-tuning task ({'; '.join(f'{t.name}: {t.help}' for t in registry.TASKS if t.family == registry.FINETUNE)}); must agree with the recipe's task, or sets it."),
             print_config: bool = PrintOpt, resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt,
             num_processes: Optional[int] = NumProcOpt, num_machines: int = NumMachOpt, machine_rank: int = MachRankOpt,
             main_process_ip: Optional[str] = MainIpOpt, main_process_port: Optional[int] = MainPortOpt,
             accelerate_config: Optional[str] = AccCfgOpt, keep_at_end: Optional[int] = KeepEndOpt) -> None:
    from ftkit.recipe import load_recipe, packaged

    extra = []
    if task is not None:
        if task not in registry.names(registry.FINETUNE):
            raise UserError(f"--task: '{task}' is not a fine-tuning task; expected one of {', '.join(registry.names(registry.FINETUNE))}")
        first = load_recipe(packaged.find(str(recipe)), overrides or [])
        if "task" in first.model_fields_set and first.task != task:
            raise UserError(f"--task {task}: {recipe} is {with_article(repr(first.task))} recipe; drop --task or use {with_article(task)} recipe")
        extra = [f"task={task}"]
    r = _recipe(recipe, [*(overrides or []), *extra, *_keep(keep_at_end)], print_config)
    _offline_defaults()
    from ftkit.launch import Launch

    launch = Launch(num_processes, num_machines, machine_rank, main_process_ip, main_process_port, accelerate_config)
    if launch.wanted:
        _launch(launch, r, resume, overwrite)
    from ftkit.workflows import train as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log, family=registry.FINETUNE)


def _columns(text: Optional[str], pair: Optional[str], label: Optional[str], names: Optional[str]) -> dict:
    """data.* settings given as command-line options (for a file laid out unlike the training data)."""
    given = {"text_column": text, "text_pair_column": pair, "label_column": label,
             "column_names": [c.strip() for c in names.split(",")] if names else None}
    return {k: v for k, v in given.items() if v is not None}


def _data_options(items: Optional[List[str]]) -> dict:
    """-D KEY=VALUE -> {KEY: VALUE}; values are YAML (3, true, [a, b]); the schema checks the keys."""
    from ftkit.recipe.load import parse_value

    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--data-option {item}: expected KEY=VALUE, e.g. tag_field=3")
        out[key.strip().removeprefix("data.")] = parse_value(value)
    return out


TextColOpt = typer.Option(None, "--text-column", help="Column with the text (default: the model's recipe's).")
PairColOpt = typer.Option(None, "--pair-column", help="Column with the second text of pairs (default: the recipe's).")
NamesOpt = typer.Option(None, "--column-names", help="Comma-separated column names for a csv/tsv file without a header.")
DelimOpt = typer.Option(None, "--delimiter", help="The character between the fields of a csv/tsv file, e.g. ';' or '|' "
                        "(TAB: '\\t'; default: TAB for .tsv; .csv: the comma, or the one its header row shows).")


def _delimiter(value: Optional[str]) -> dict:
    from ftkit.recipe.fields import check_delimiter

    try:
        return {} if value is None else {"delimiter": check_delimiter(value)}
    except ValueError as e:
        raise UserError(f"--delimiter {value!r}: {e}") from None


@app.command("eval")
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
                                                         "this file, KEY=VALUE (e.g. -D tag_field=3 -D format=conll); repeatable."),
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
                                        "supports it: faster generation).")) -> None:
    """Evaluate a saved model: loss and perplexity for language models (sft: over the assistant tokens; with
    --generate, exact match of generated answers); accuracy, macro-F1, MCC, per-class precision/recall and the
    confusion matrix (also as a PNG) for classifiers; entity P/R/F1 for ner."""
    _offline_defaults()
    from ftkit.workflows import evaluate as wf

    if precision not in ("fp32", "bf16", "fp16", "auto"):
        raise UserError(f"--precision: '{precision}'; expected fp32, bf16, fp16 or auto")
    metrics = wf.run(model, data=data, task=task, batch_size=batch_size, block_size=block_size,
                     max_batches=max_batches, log=log, plot=plot, generate=generate_, generations=generations,
                     precision=precision, recipe=recipe,
                     data_overrides={**_columns(text_column, pair_column, label_column, column_names),
                                     **_delimiter(delimiter), **({"encoding": encoding} if encoding else {}),
                                     **_data_options(data_option)})
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


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.")) -> None:
    """Versions, devices, whether bf16 is usable, and how a multi-process launch would run here."""
    from ftkit.workflows import doctor as wf

    r = wf.report()
    typer.echo(json.dumps(r) if as_json else "\n".join(wf.lines(r)))


OutputOpt = typer.Option(..., "--output", "-o", help="Directory to write (must not exist yet).")
DataOpt = typer.Option(None, "--data", help="Evaluation file (default: the validation data of the model's recipe).")


@compress_app.command("quantize")
def compress_quantize(model: str = typer.Option(..., "--model", "-m", help="A saved classifier or causal LM."),
                      output: str = OutputOpt, data: Optional[str] = DataOpt,
                      batch_size: int = typer.Option(32, "--batch-size", min=1),
                      max_batches: Optional[int] = typer.Option(None, "--max-batches", min=1),
                      as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object.")) -> None:
    """Dynamic int8 quantization of the Linear layers for CPU inference; accuracy / perplexity, latency and size
    before and after. Saved as model.int8.safetensors + quantization.json; ftkit eval / predict / generate load it."""
    _offline_defaults()
    from ftkit.workflows import compress as wf

    report = wf.quantize(model, output, data=data, batch_size=batch_size, max_batches=max_batches, log=log)
    typer.echo(json.dumps(report) if as_json else wf.render(report))


@compress_app.command("prune")
def compress_prune(model: str = typer.Option(..., "--model", "-m", help="A saved classifier or causal LM."),
                   output: str = OutputOpt,
                   sparsity: float = typer.Option(0.0, "--sparsity", help="Share of the layers' weights to zero, in [0, 1) (magnitude)."),
                   scope: str = typer.Option("global", "--scope", help="global (one threshold for all layers) or layer (each at the target)."),
                   heads: Optional[float] = typer.Option(None, "--heads", help="Share of attention heads to remove, least important first (Michel et al.)."),
                   finetune_steps: int = typer.Option(0, "--finetune-steps", min=0, help="Fine-tune this many steps after pruning (the model's recipe's data and settings)."),
                   lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of that fine-tune (default: the recipe's)."),
                   data: Optional[str] = DataOpt, batch_size: int = typer.Option(32, "--batch-size", min=1),
                   max_batches: Optional[int] = typer.Option(None, "--max-batches", min=1),
                   as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object.")) -> None:
    """Unstructured magnitude pruning and/or attention-head pruning, optionally fine-tuned; sparsity, size and
    accuracy / perplexity before and after. The output is a plain model (pruned weights are zeros)."""
    _offline_defaults()
    from ftkit.workflows import compress as wf

    report = wf.prune(model, output, sparsity=sparsity, scope=scope, heads=heads, finetune_steps=finetune_steps, lr=lr,
                      data=data, batch_size=batch_size, max_batches=max_batches, log=log)
    typer.echo(json.dumps(report) if as_json else wf.render(report))


@compress_app.command("distill", help="Train a smaller student on the soft targets of the teacher in model.from_pretrained "
                      f"({' or '.join(t.name for t in registry.TASKS if t.compress)}; see the distill section).")
def compress_distill(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
                     resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt) -> None:
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import distill as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log)


@app.command()
def export(model: Optional[str] = typer.Option(None, "--model", "-m", help="A run: a LoRA adapter directory (--merge), or "
                                               "a Llama-family causal LM or LoRA adapter of one (--to-gguf)."),
           output: str = typer.Option(..., "--output", "-o", help="Directory to write (--merge, --from-gguf), or the "
                                      "FILE.gguf to write (--to-gguf); must not exist yet."),
           merge: bool = typer.Option(False, "--merge", help="Fold the LoRA update into the weights: a plain model."),
           from_gguf: Optional[str] = typer.Option(None, "--from-gguf", help="A GGUF file (or pkg://PACKAGE/file.gguf) to "
                                                   "write as a plain safetensors model directory."),
           to_gguf: bool = typer.Option(False, "--to-gguf", help="Write the run as one GGUF file (llama.cpp, Ollama) "
                                        "with its tokenizer and chat template, and an Ollama Modelfile beside it."),
           gguf_type: str = typer.Option("f16", "--type", help="--to-gguf: the type of the weight matrices, f16 or q8_0 "
                                         "(norms stay f32).")) -> None:
    """Write a LoRA adapter as a plain merged model that transformers loads without peft (--merge), a GGUF
    file as a safetensors model directory with its tokenizer and chat template (--from-gguf), or a run as a
    GGUF file for llama.cpp / Ollama (--to-gguf, LoRA merged first)."""
    _offline_defaults()
    from ftkit.workflows import export as wf

    if from_gguf is not None:
        if model is not None or to_gguf:
            raise UserError("export: give either --model DIR (--merge or --to-gguf), or --from-gguf FILE")
        wf.from_gguf(from_gguf, output, log=log)
        return
    if model is None:
        raise UserError("export: give either --model DIR (--merge or --to-gguf), or --from-gguf FILE")
    if to_gguf:
        if merge:
            raise UserError("export: --merge writes a model directory, --to-gguf a GGUF file (it merges a LoRA "
                            "adapter itself); give one of them")
        from ftkit.workflows import gguf_export

        gguf_export.run(model, output, gguf_type, log=log)
        return
    wf.run(model, output, merge, log=log)


@app.command()
def runs(folder: Path = typer.Argument(Path("runs"), help="Folder of runs (searched recursively for run.json)."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout.")) -> None:
    """The runs under a folder, newest first: task, status (running / stopped / finished), steps, best metric, time."""
    from ftkit.workflows import runs as wf

    rows = wf.collect(str(folder))
    typer.echo(json.dumps(rows) if as_json else wf.table(rows))


@app.command()
def report(runs: List[Path] = typer.Argument(..., help="Run directories (output_dir of pretrain / finetune); runs still "
                                             "going are reported as far as they got."),
           output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The HTML file to write."),
           overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file.")) -> None:
    """One self-contained HTML page comparing runs: overlaid curves, best / final metrics, time, pace, status and
    the recipe keys that differ. Reads the runs; changes nothing in them."""
    from ftkit.workflows import report as wf

    path = wf.write([str(r) for r in runs], str(output), overwrite, log=log)
    log(f"report: {path} ({path.stat().st_size / 1024:,.0f} KiB; open it in a browser)")


@app.command()
def push(model: str = typer.Option(..., "--model", "-m", help="A saved model directory (a run's output_dir, an export)."),
         repo_id: str = typer.Option(..., "--repo-id", help="USER/NAME (or ORG/NAME) on the Hugging Face hub."),
         private: bool = typer.Option(False, "--private", help="Create the repository private.")) -> None:
    """Publish a saved model to the Hugging Face hub: weights, tokenizer or image processor, adapters, recipe,
    metrics and the model card (checkpoints and tracker logs stay here). Needs a token (`hf auth login`)."""
    from ftkit.workflows import push as wf

    wf.run(model, repo_id, private, log=log)


@recipes_app.command("list")
def recipes_list(folder: Optional[Path] = typer.Argument(None, help="Folder of recipes (default: ./recipes if it "
                                                         "exists, else the recipes shipped with ftkit).")) -> None:
    """List the recipes in a folder with their task and output directory."""
    from ftkit.recipe import load_recipe, packaged

    if folder is None:
        folder = Path("recipes") if Path("recipes").is_dir() else packaged.folder()
        if folder is None:
            raise UserError("no ./recipes folder here and this ftkit ships none")
        log(f"recipes in {folder}")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UserError(f"{folder}: no *.yaml recipes here")
    for f in files:
        try:
            r = load_recipe(f)
            typer.echo(f"{f.name:<34} {r.task:<8} {r.output_dir}")
        except UserError as e:
            typer.echo(f"{f.name:<34} INVALID  {e}")


@recipes_app.command("new")
def recipes_new(name: str = typer.Argument(..., help="Name of the new recipe (NAME.yaml, output_dir runs/NAME)."),
                template: str = typer.Option("sst2-minilm-quick", "--from", help="A shipped recipe's name or a recipe file.")) -> None:
    """Start a recipe of your own from a shipped one (written to ./NAME.yaml; never overwrites)."""
    from ftkit.recipe import packaged

    target = packaged.new(name, template, Path("."))
    log(f"wrote {target} (from {template}); edit its data section, then: ftkit recipes show {target}")


@recipes_app.command("show")
def recipes_show(recipe: Path = typer.Argument(..., help="Recipe file, or the name of a shipped recipe."),
                 overrides: Optional[List[str]] = OverridesArg) -> None:
    """Print a recipe fully resolved, with every default."""
    _recipe(recipe, overrides, print_config=True)


@recipes_app.command("validate")
def recipes_validate(recipes: List[Path] = typer.Argument(..., help="Recipe files."),
                     schema_only: bool = typer.Option(False, "--schema-only", help="Check keys and values only, not that "
                                                      "the local data, tokenizer and model paths exist.")) -> None:
    """Validate recipes against the schema and check that the local paths they read exist (data files, a tokenizer
    or model to reuse; hub ids are not looked up); exit 2 on the first invalid one."""
    from ftkit.recipe import load_recipe

    for f in recipes:
        load_recipe(f, check_inputs=not schema_only)
        typer.echo(f"{f}: ok")


@recipes_app.command("docs")
def recipes_docs() -> None:
    """Print the recipe reference (every key, type, default, description) as Markdown."""
    from ftkit.recipe.docs import render

    typer.echo(render())


EXAMPLES = {
    "tokenize": "ftkit tokenize -r recipes/gpt-shakespeare-char.yaml --encode",
    "pretrain": "ftkit pretrain -r recipes/gpt-shakespeare-char.yaml train.lr=3e-4 train.max_steps=500",
    "finetune": "ftkit finetune --task ner -r recipes/wnut17-minilm.yaml",
    "eval": "ftkit eval --model runs/sst2-minilm-quick --data ../shared/data/sst2/glue/dev.tsv --json",
    "generate": "ftkit generate --model runs/gpt-shakespeare-char --prompt 'ROMEO:' --max-new-tokens 200",
    "predict": "echo 'a gorgeous, witty movie' | ftkit predict --model runs/sst2-minilm-quick",
    "doctor": "ftkit doctor --json",
    "runs": "ftkit runs runs/",
    "export": "ftkit export --merge --model runs/sst2-minilm-lora --output runs/sst2-minilm-lora-merged",
    "chat": "ftkit chat --model runs/smollm2-gsm8k-lora",
    "compress quantize": "ftkit compress quantize --model runs/sst2-minilm-quick --output runs/sst2-minilm-int8",
    "compress prune": "ftkit compress prune --model runs/sst2-minilm-quick --output runs/p50 --sparsity 0.5 --finetune-steps 200",
    "compress distill": "ftkit compress distill -r recipes/sst2-minilm-distill.yaml",
    "recipes list": "ftkit recipes list recipes",
    "recipes show": "ftkit recipes show sst2-minilm-quick train.lr=5e-5",
    "recipes new": "ftkit recipes new my-spam --from sms-spam-minilm",
    "recipes validate": "ftkit recipes validate my-spam.yaml",
    "recipes docs": "ftkit recipes docs > docs/recipes.md",
}


METAVARS = {"model": "DIR", "recipe": "FILE", "data": "FILE", "output": "DIR", "accelerate_config": "FILE", "gguf_type": "f16|q8_0",
            "plot": "PNG", "from_gguf": "FILE", "generations": "JSONL", "data_option": "KEY=VALUE", "fmt": "auto|text|conll", "task": "TASK", "context": "FILE",
            "main_process_ip": "IP", "main_process_port": "PORT", "column_names": "A,B,...", "overrides": "KEY=VALUE"}


def _command():
    """The click command behind the Typer app, with plain metavars (--batch-size N, not <int range>) and one
    example under each command's help."""
    def walk(cmd, path: list[str]) -> None:
        for p in cmd.params:  # typer vendors its own click: recognise options by their kind, not their class
            kind = getattr(p, "param_type_name", "")
            if kind == "argument":  # its metavar (or name) already says what it is
                p.display_type_rich = lambda ctx=None, shown=METAVARS.get(p.name, ""): shown
            if kind == "option" and not p.is_flag and not p.count:
                try:
                    typed = p.display_type(None)  # e.g. "<int range>"
                except Exception:  # noqa: BLE001 (a help nicety must never break the CLI)
                    typed = ""
                number = "N" if typed.startswith("<int") else "X" if typed.startswith("<float") else None
                shown = METAVARS.get(p.name) or number or p.name.upper().replace("_", "-")
                # typer 0.29 prints the Python type (`<int range> [x>=1]`); help reads better with a name
                p.metavar = shown
                p.display_type_rich = lambda ctx=None, shown=shown: shown
        example = EXAMPLES.get(" ".join(path))
        if example:
            cmd.epilog = f"\b\nExample:\n  {example}"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    command = typer.main.get_command(app)
    walk(command, [])
    return command


class _QuietLibraries:
    """Library warnings (transformers, peft, accelerate, sklearn, safetensors ...) break the one-line promise:
    collected while a command runs and summed up in one line at the end; `ftkit --debug` shows them as they come."""

    def __enter__(self):
        import logging
        import warnings

        self.seen: list[str] = []
        self.debug = "--debug" in sys.argv[1:]
        if self.debug:
            return self
        self._show, self._filters = warnings.showwarning, list(warnings.filters)
        warnings.simplefilter("default")  # each distinct warning once
        warnings.showwarning = lambda message, category, *_a, **_k: self.seen.append(f"{category.__name__}: {message}")
        # the libraries set their own logger levels when imported (later): their environment variables last
        for var in ("TRANSFORMERS_VERBOSITY", "HF_HUB_VERBOSITY", "DATASETS_VERBOSITY"):
            os.environ.setdefault(var, "error")
        self._levels = {}
        for name in ("transformers", "accelerate", "peft", "datasets", "torch", "huggingface_hub"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        import logging
        import warnings

        if self.debug:
            return False
        warnings.showwarning = self._show
        warnings.filters[:] = self._filters
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        distinct = list(dict.fromkeys(self.seen))
        if distinct:
            first = " ".join(distinct[0].split())[:140]
            typer.echo(f"note: {len(distinct)} library warning(s) hidden (first: {first}); ftkit --debug shows them",
                       err=True)
        return False


def main() -> None:
    try:
        with _QuietLibraries():
            _command()(prog_name="ftkit")
    except UserError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {rank_prefix()}{e}", err=True)
        sys.exit(e.exit_code)
    except RuntimeError as e:  # a rank whose collective broke because another rank ended: that one's error says why
        if _state["debug"] or not (rank_prefix() and peer_stopped(e)):
            raise
        typer.echo(f"error: {rank_prefix()}{PEER_STOPPED} (its error is above)", err=True)
        sys.exit(1)
    except NothingToDo as e:
        typer.echo(str(e), err=True)
        sys.exit(0)
    except PartialFailure as e:  # the failed inputs have had their error lines; this sums them up
        typer.echo(str(e), err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
