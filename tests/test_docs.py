"""Docs that cannot rot: every relative link in README and docs/ resolves, every `ftkit ...` command they quote
parses against the real CLI (its commands and flags, its recipe file, the recipe keys its overrides name), every
`make X` is a Makefile target, README's commands table is the CLI's command list, and help texts that list tasks
come from the registry. Nothing is run: commands are parsed by the click command behind ftkit's Typer app."""

from __future__ import annotations

import copy
import functools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftkit import registry
from ftkit.cli import entry as cli
from ftkit.errors import UserError
from ftkit.recipe import load_recipe, packaged
from ftkit.recipe.load import _section_type, apply_override, validate
from ftkit.recipe.schema import Recipe, TrainSection

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "text"}
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_/.-]*$")  # R, DIR, RUN, USER/NAME: a value the reader fills in


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _prose(text: str) -> str:
    """The page without its fenced code blocks (links and inline spans are read from this)."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """mkdocs' (Python-Markdown toc) and GitHub's anchor of a heading, for the headings these pages use."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


@functools.lru_cache(maxsize=None)
def _anchors(page: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", _prose(page.read_text()), re.M)}


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{_rel(page)}: link {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{_rel(page)}: link {target}: no heading with anchor #{anchor}")
    return bad


def shell_commands(page: Path) -> list[tuple[str, str]]:
    """(where, command line) for every `ftkit`/`make` command in the page: each simple command of a shell code
    block (pipes, `&&`, redirections and comments split off) and each inline code span that starts with one."""
    text = page.read_text()
    found = []
    for lang, body in FENCE.findall(text):
        if lang not in SHELL_LANGS:
            continue
        lines = [x.strip() for x in body.replace("\\\n", " ").splitlines()] + [""]
        for line, after in zip(lines, lines[1:]):
            line = line.removeprefix("$ ")
            if line.startswith(("error:", "{")) or after.startswith("error:"):  # an output, or a bad-input example
                continue
            found += [(f"{_rel(page)} (code block)", c) for c in _split(_optional(line))]
    for span in SPAN.findall(_prose(text)):
        if re.match(r"^(\S*/ftkit|ftkit|make) ", span) and "..." not in span and not re.search(r"\w\\?\|\w", span):
            found += [(f"{_rel(page)} (inline)", c) for c in _split(_optional(span))]
    return found


def _optional(line: str) -> str:
    """`[--resume]`, `[k=v k=v]`: optional parts are checked like the rest; N and X (the help's metavars for
    numbers) get a number."""
    line = re.sub(r"\[(-[^\]]*|[\w.]+=[^\]]*)\]", r"\1", line)
    return re.sub(r"(?<=\s)N(?=\s|$)", "2", re.sub(r"(?<=\s)X(?=\s|$)", "0.5", line))


def _split(line: str) -> list[str]:
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split, lexer.commenters = True, "#"
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in prose-like lines: not a command
        return []
    commands, current, skip_next = [], [], False
    for tok in tokens:
        if tok in {"|", "||", "&&", ";", "&"}:
            commands.append(current)
            current = []
        elif tok in {">", ">>", "<", "2>"}:
            skip_next = True
        elif skip_next:
            skip_next = False
        else:
            current.append(tok)
    commands.append(current)
    # `.venv/bin/ftkit` (the tour, run from a checkout) is ftkit too
    return [shlex.join(["ftkit", *c[1:]] if c[0].endswith("/ftkit") else c) for c in commands
            if c and (c[0] in ("ftkit", "make") or c[0].endswith("/ftkit"))]


@functools.lru_cache(maxsize=None)
def _cli():
    return cli._command()  # built once: Typer builds the click command tree anew on every call


def _resolve(args: list[str]):
    """The click context of `ftkit ARGS` (the subcommand's), parsed exactly as the CLI parses; raises on an
    unknown command or flag, a bad value, a missing required option."""
    ctx = _cli().make_context("ftkit", list(args))
    while hasattr(ctx.command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else [*ctx.protected_args, *ctx.args]
        name, cmd, rest = ctx.command.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)
    return ctx


def key_error(key: str) -> str | None:
    """Why `key` is not a recipe key (None if it is); free-form mappings (model.config) take any sub-key."""
    model, parts = Recipe, key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return f"unknown key '{'.'.join(parts[:i + 1])}'"
        sub = _section_type(field.annotation)
        if sub is None:
            if i < len(parts) - 1 and "dict" not in repr(field.annotation):
                return f"'{'.'.join(parts[:i + 1])}' is not a section"
            return None
        model = sub
    return None


def check_ftkit(line: str, mention: bool = False) -> str | None:
    """Why the command line would not run as written (None if it would). `mention`: an inline `ftkit eval` in
    prose names a command; it may leave out required options, nothing else."""
    args = [a for a in shlex.split(line)[1:] if a != "--debug"]
    if not args or args[:1] == ["--version"] or "--help" in args:
        return None
    try:
        ctx = _resolve(args)
    except Exception as e:  # click's UsageError family (typer vendors its click: matched by its class names)
        if mention and type(e).__name__ in ("MissingParameter", "NoArgsIsHelpError"):
            return None
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        return f"does not parse: {message}"
    params = ctx.params
    overrides = [o for o in params.get("overrides") or [] if not o.startswith("$")]
    for item in overrides:
        key, eq, _ = item.partition("=")
        if not eq:
            return f"override {item!r}: expected dotted.key=value"
        if (why := key_error(key)) is not None:
            return f"override {item}: {why}"
    recipe = params.get("recipe")
    if recipe is None or PLACEHOLDER.match(str(recipe)):
        return None
    path = packaged.find(str(recipe))  # as the CLI finds it; the working directory is the repository root
    if not path.is_file():
        return f"recipe {recipe}: no such file and no shipped recipe of that name"
    if any(PLACEHOLDER.match(o.partition("=")[2]) for o in overrides) or len(overrides) != len(params.get("overrides") or []):
        return None  # a value left to the reader (train.seed=S), or a shell variable: the keys were checked above
    try:
        raw = copy.deepcopy(_raw_recipe(path))  # load_recipe's steps, the YAML parsed once per file
        for item in overrides:
            apply_override(raw, item)
        raw.setdefault("name", path.stem)
        validate(raw, source=f"{path} with {' '.join(overrides)}")
    except UserError as e:
        return f"recipe does not load: {e}"
    return None


@functools.lru_cache(maxsize=None)
def _raw_recipe(path: Path) -> dict:
    load_recipe(path)  # the file itself loads (its own errors, with their lines)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


def check_make(line: str) -> str | None:
    targets = [a for a in shlex.split(line)[1:] if "=" not in a and not a.startswith("-")]
    missing = [t for t in targets if t not in make_targets()]
    return f"no Makefile target {', '.join(missing)}" if missing else None


def problems(pages=PAGES) -> list[str]:
    out = []
    for page in pages:
        out += broken_links(page)
        # an empty block is a doubled fence: the commands meant for it render as prose and escape these checks
        out += [f"{_rel(page)}: an empty code block (a doubled ```?)" for _, body in FENCE.findall(page.read_text())
                if not body.strip()]
        for where, line in shell_commands(page):
            why = check_ftkit(line, where.endswith("(inline)")) if line.startswith("ftkit") else check_make(line)
            if why:
                out.append(f"{where}: `{line}`: {why}")
    return out


def test_every_link_command_and_make_target_in_readme_and_docs_is_real(monkeypatch):
    monkeypatch.chdir(ROOT)  # commands in the docs are written from the repository root
    found = problems()
    assert not found, "\n".join(found)


def test_the_checker_catches_what_it_is_for(tmp_path, monkeypatch):
    """Each kind of rot once, so a checker that accepts everything fails here."""
    monkeypatch.chdir(ROOT)
    page = tmp_path / "page.md"
    page.write_text("# Top\n[gone](nowhere.md) [anchor](#top) [bad anchor](#bottom)\n\n```\n"
                    "ftkit pretrain -r recipes/gpt-shakespeare-char.yaml train.lrr=1e-3\n"
                    "ftkit pretrain -r recipes/gpt-shakespeare-char.yaml --resmue\n"
                    "ftkit trian -r recipes/gpt-shakespeare-char.yaml\n"
                    "ftkit finetune -r recipes/no-such-recipe.yaml\n"
                    "ftkit pretrain -r recipes/gpt-shakespeare-char.yaml train.max_steps=-1\n"
                    "make tests\n```\n```\n```\n"
                    "and `ftkit eval --modle runs/x` inline; fine: `ftkit pretrain -r R train.seed=S`, "
                    "`ftkit pretrain -r recipes/gpt-shakespeare-char.yaml model.config.n_layer=2`\n")
    found = "\n".join(problems([page]))
    for expected in ("nowhere.md: no such file", "#bottom", "unknown key 'train.lrr'", "--resmue", "trian",
                     "no-such-recipe.yaml: no such file", "recipe does not load", "no Makefile target tests", "--modle", "an empty code block"):
        assert expected in found, f"{expected!r} not reported:\n{found}"
    assert "#top" not in found and "train.seed=S" not in found and "n_layer" not in found


def _readme_commands_table() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = [r.replace("\\|", "|") for r in re.findall(r"^\| `ftkit ([a-z-]+(?: [a-z\\|]+)?)", section, re.M)]
    names = set()
    for row in rows:
        first, _, sub = row.partition(" ")
        names |= {f"{first} {s}".strip() for s in sub.split("|")} if sub and not sub.startswith("-") else {first}
    return names


def test_readme_commands_table_lists_every_command_of_the_cli():
    group = cli._command()
    commands = set()
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        commands |= {f"{name} {s}" for s in subs} if subs else {name}
    assert _readme_commands_table() == commands


def test_help_texts_that_list_tasks_come_from_the_registry():
    out = subprocess.run([sys.executable, "-m", "ftkit.cli", "pretrain", "--help"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}, check=True).stdout
    for task in registry.names(registry.PRETRAIN):
        assert re.search(rf"(?<![\w+-]){re.escape(task)}(?![\w+-])", out), f"`ftkit pretrain --help` does not name {task}"
    lr = TrainSection.model_fields["lr"].description
    strategies = Recipe.model_fields["finetune"].description
    for task in registry.names(registry.FINETUNE):
        assert re.search(rf"\({'[^)]*'}(?<![\w+-]){re.escape(task)}(?![\w+-])", lr.split("fine-tuning", 1)[1]), task
    examples = Recipe.model_fields["data"].annotation.model_fields["train_examples"].description
    image = Recipe.model_fields["image"].description
    distill = cli._command().commands["compress"].commands["distill"].help
    for t in registry.TASKS:
        for listed, text in ((t.train_examples, examples), (t.images, image), (t.compress, distill)):
            assert bool(re.search(rf"(?<![\w+-]){re.escape(t.name)}(?![\w+-])", text)) == listed, (t.name, text)
    for task in (t for t in registry.TASKS if t.adapters):
        for adapter in task.adapters:
            assert re.search(rf"{adapter} \([^)]*\b{re.escape(task.name)}\b", strategies), (adapter, task.name)


def test_the_generated_recipe_reference_is_current():
    from ftkit.recipe.docs import render

    assert (ROOT / "docs" / "recipes.md").read_text().strip() == render().strip(), "run `make docs`"


def test_images_the_docs_show_from_bench_are_the_bench_files():
    """docs/img/ holds copies of bench pictures (mkdocs serves only docs/): a rerun bench must be copied again."""
    for img in (ROOT / "docs" / "img").glob("*.png"):
        twin = ROOT / "bench" / "results" / img.name
        if twin.exists():
            assert img.read_bytes() == twin.read_bytes(), f"cp bench/results/{img.name} docs/img/"


@pytest.mark.skipif(shutil.which("mkdocs") is None and not Path(sys.executable).with_name("mkdocs").exists(),
                    reason="mkdocs is not installed (the docs extra; `make venv` installs it)")
def test_the_site_builds_strictly_and_renders(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    site = tmp_path / "site"
    run = subprocess.run([str(mkdocs if mkdocs.exists() else "mkdocs"), "build", "--strict", "-q", "-d", str(site)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    home = (site / "index.html").read_text()
    assert "tasks/classification/" in home
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium installed: the site built, the rendering is not checked")
    shot = tmp_path / "page.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1280,900", (site / "tasks" / "classification" / "index.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a blank page is a few kB; a rendered page with text and navigation is more
