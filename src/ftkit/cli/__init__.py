"""The `ftkit` command line. Thin: parse flags, load the recipe, call one workflow.

apps.py: the Typer apps and what commands share (options, the launch options declared once, the recipe loader);
train.py, use.py, manage.py: the commands, by what they do; entry.py: `main` (help polish, quiet libraries, errors
as one line and an exit code)."""

from ftkit.cli.entry import EXAMPLES, main  # noqa: F401 (the console script is ftkit.cli:main)
