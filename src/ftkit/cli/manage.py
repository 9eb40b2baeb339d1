"""Commands that look after models, runs and recipes: `doctor`, `compress quantize|prune`, `export`, `runs`, `report`,
`push`, `recipes list|new|show|validate|docs`.

Each command imports its workflow (and ftkit's torch-side modules) when it runs, not here: `ftkit --help` and
recipe checks start without torch (tests/workflows/test_gpt_cli.py asserts it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ftkit.cli.apps import DataOpt, OutputOpt, OverridesArg, _offline_defaults, _recipe, app, compress_app, log, recipes_app
from ftkit.errors import UserError


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.")) -> None:
    """Versions, devices, whether bf16 is usable, and how a multi-process launch would run here."""
    from ftkit.workflows import doctor as wf

    r = wf.report()
    typer.echo(json.dumps(r) if as_json else "\n".join(wf.lines(r)))


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


