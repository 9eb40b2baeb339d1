"""The Typer apps of the `ftkit` command line and what its commands share: options, the recipe loader, the log, and
the launch options (declared once, here: `with_launch` gives them to every command that can run on many processes).

Each command imports its workflow (and ftkit's torch-side modules) when it runs, not here: `ftkit --help` and
recipe checks start without torch (tests/workflows/test_gpt_cli.py asserts it)."""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import List, Optional

import typer

from ftkit.errors import UserError
from ftkit.launch import Launch

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
SystemOpt = typer.Option(None, "--system", help="A system prompt for the conversation (default: the one the model was "
                         "trained with, sft.system_prompt, when training had one; --system '' for none).")
KeepEndOpt = typer.Option(None, "--keep-checkpoints-at-end", min=0, help="Resumable checkpoints to keep once the run "
                          "has finished (train.keep_checkpoints_at_end; default 1, 0: only the final model).")




# --num-processes & co.: one declaration; `with_launch` adds them to a command's signature and hands the command one
# `launch: Launch` (Typer reads the signature, so every such command lists the same options with the same help)
_KW = inspect.Parameter.KEYWORD_ONLY
LAUNCH_OPTIONS = [
    inspect.Parameter("num_processes", _KW, annotation=Optional[int], default=typer.Option(
        None, "--num-processes", min=1, help="Processes in total (all machines); >1 launches through Accelerate.")),
    inspect.Parameter("num_machines", _KW, annotation=int, default=typer.Option(1, "--num-machines", min=1, help="Machines taking part.")),
    inspect.Parameter("machine_rank", _KW, annotation=int, default=typer.Option(
        0, "--machine-rank", min=0, help="This machine's rank (0 = the main one).")),
    inspect.Parameter("main_process_ip", _KW, annotation=Optional[str], default=typer.Option(
        None, "--main-process-ip", help="Address of machine rank 0.")),
    inspect.Parameter("main_process_port", _KW, annotation=Optional[int], default=typer.Option(
        None, "--main-process-port", min=1, max=65535, help="Port on machine rank 0.")),
    inspect.Parameter("accelerate_config", _KW, annotation=Optional[str], default=typer.Option(
        None, "--accelerate-config", help="An Accelerate config file (e.g. recipes/launch/fsdp.yaml).")),
]


def with_launch(command):
    """`command(..., launch: Launch)` as a Typer command taking the launch options above."""
    signature = inspect.signature(command)
    kept = [p for p in signature.parameters.values() if p.name != "launch"]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        launch = Launch(*(kwargs.pop(p.name) for p in LAUNCH_OPTIONS))
        return command(*args, launch=launch, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *LAUNCH_OPTIONS])
    return wrapper


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
            raise UserError(f"--data-option {item}: expected KEY=VALUE, e.g. format=conll or ner.tag_field=3")
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


OutputOpt = typer.Option(..., "--output", "-o", help="Directory to write (must not exist yet).")
DataOpt = typer.Option(None, "--data", help="Evaluation file (default: the validation data of the model's recipe).")


