"""`ftkit`'s entry point: the click command behind the Typer apps (plain metavars, one example per command), library
warnings summed up in one line, and errors turned into one line and an exit code.

Heavy libraries (torch, transformers, datasets) are imported inside the commands so that `ftkit --help` answers at
once. Bad input raises UserError: one line on stderr, exit 2, no traceback unless --debug. Logs go to stderr; stdout
carries results (--json, predictions)."""

from __future__ import annotations

import os
import sys

import typer

from ftkit.cli import manage, train, use  # noqa: F401 (their commands register on the apps)
from ftkit.cli.apps import _state, app
from ftkit.errors import NothingToDo, PartialFailure, UserError
from ftkit.launch import PEER_STOPPED, peer_stopped, rank_prefix

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


