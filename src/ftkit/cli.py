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

from ftkit.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Develop Transformer language models from zero: tokenize, pre-train, fine-tune, evaluate.")
recipes_app = typer.Typer(no_args_is_help=True, help="List, show, validate and document recipes.")
app.add_typer(recipes_app, name="recipes")

_state = {"debug": False}
RecipeOpt = typer.Option(..., "--recipe", "-r", help="Recipe YAML file.")
OverridesArg = typer.Argument(None, help="Overrides: dotted.key=value ... (e.g. train.lr=3e-4 data.block_size=128)")
PrintOpt = typer.Option(False, "--print-config", help="Print the fully resolved recipe (every default) and exit.")
ResumeOpt = typer.Option(False, "--resume", help="Continue the run in output_dir from its latest checkpoint.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Move an earlier run in output_dir aside (never deleted) and start anew.")


def log(message: str) -> None:
    typer.echo(message, err=True)


def _recipe(path: Path, overrides: Optional[List[str]], print_config: bool):
    from ftkit.recipe import dump_recipe, load_recipe

    recipe = load_recipe(path, overrides or [])
    if print_config:
        typer.echo(dump_recipe(recipe), nl=False)
        raise typer.Exit(0)
    return recipe


def _offline_defaults() -> None:
    # Local files must not ping the hub's download counter; hub loads stay possible when online.
    os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    _state["debug"] = debug
    if version:
        from ftkit import __version__

        typer.echo(f"ftkit {__version__}")
        raise typer.Exit(0)


@app.command()
def tokenize(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
             encode: bool = typer.Option(False, "--encode", help="Also tokenize the corpus into the packed cache that pretrain reuses."),
             overwrite: bool = typer.Option(False, "--overwrite", help="Move an existing tokenizer at tokenizer.path aside.")) -> None:
    """Train the recipe's tokenizer (bpe, wordpiece, unigram, char) and print its statistics."""
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import tokenize as wf

    wf.run(r, encode=encode, overwrite=overwrite, log=log)


@app.command()
def pretrain(recipe: Path = RecipeOpt, overrides: Optional[List[str]] = OverridesArg, print_config: bool = PrintOpt,
             resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt) -> None:
    """Pre-train a model (clm, mlm, mlm+nsp) as the recipe describes."""
    r = _recipe(recipe, overrides, print_config)
    _offline_defaults()
    from ftkit.workflows import pretrain as wf

    wf.run(r, resume=resume, overwrite=overwrite, log=log)


@app.command("eval")
def eval_(model: str = typer.Option(..., "--model", "-m", help="A saved model directory (an ftkit output_dir)."),
          data: Optional[str] = typer.Option(None, "--data", help="Evaluation file (default: the validation data of the model's recipe)."),
          task: Optional[str] = typer.Option(None, "--task", help="clm, mlm, mlm+nsp or cls (default: from the model's config)."),
          batch_size: int = typer.Option(8, "--batch-size", min=1),
          block_size: Optional[int] = typer.Option(None, "--block-size", min=1, help="Sequence length (default: the recipe's)."),
          max_batches: Optional[int] = typer.Option(None, "--max-batches", min=1),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.")) -> None:
    """Evaluate a saved model: loss and perplexity for language models."""
    _offline_defaults()
    from ftkit.workflows import evaluate as wf

    metrics = wf.run(model, data=data, task=task, batch_size=batch_size, block_size=block_size,
                     max_batches=max_batches, log=log)
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        shown = f"{v:,.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
        typer.echo(f"{k:<{width}}  {shown}")


@app.command()
def generate(model: str = typer.Option(..., "--model", "-m", help="A saved causal LM directory."),
             prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue (default: start of text)."),
             max_new_tokens: int = typer.Option(200, "--max-new-tokens", min=1),
             temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="0 = greedy."),
             top_k: Optional[int] = typer.Option(200, "--top-k", min=1),
             top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0),
             seed: int = typer.Option(1337, "--seed"),
             num_samples: int = typer.Option(1, "--num-samples", min=1)) -> None:
    """Sample text from a trained causal LM."""
    _offline_defaults()
    from ftkit.workflows import generate as wf

    samples = wf.run(model, prompt=prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                     top_p=top_p, seed=seed, num_samples=num_samples)
    typer.echo("\n---\n".join(samples))


@recipes_app.command("list")
def recipes_list(folder: Path = typer.Argument(Path("recipes"), help="Folder of recipes.")) -> None:
    """List the recipes in a folder with their task and output directory."""
    from ftkit.recipe import load_recipe

    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UserError(f"{folder}: no *.yaml recipes here")
    for f in files:
        try:
            r = load_recipe(f)
            typer.echo(f"{f.name:<34} {r.task:<8} {r.output_dir}")
        except UserError as e:
            typer.echo(f"{f.name:<34} INVALID  {e}")


@recipes_app.command("show")
def recipes_show(recipe: Path = typer.Argument(..., help="Recipe file."), overrides: Optional[List[str]] = OverridesArg) -> None:
    """Print a recipe fully resolved, with every default."""
    _recipe(recipe, overrides, print_config=True)


@recipes_app.command("validate")
def recipes_validate(recipes: List[Path] = typer.Argument(..., help="Recipe files.")) -> None:
    """Validate recipes against the schema; exit 2 on the first invalid one."""
    from ftkit.recipe import load_recipe

    for f in recipes:
        load_recipe(f)
        typer.echo(f"{f}: ok")


@recipes_app.command("docs")
def recipes_docs() -> None:
    """Print the recipe reference (every key, type, default, description) as Markdown."""
    from ftkit.recipe.docs import render

    typer.echo(render(), nl=False)


def main() -> None:
    try:
        app()
    except UserError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
