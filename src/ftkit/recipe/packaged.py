"""The recipes that ship inside the package (src/ftkit/recipes is the repository's recipes/ folder), so a
pip-installed ftkit can list, show and start from them: `ftkit recipes list|show|new`, `-r NAME`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ftkit.errors import UserError


def folder() -> Optional[Path]:
    from importlib import resources

    p = Path(str(resources.files("ftkit").joinpath("recipes")))
    return p if p.is_dir() else None


def names() -> list[str]:
    f = folder()
    return sorted(p.stem for p in f.glob("*.yaml")) if f else []


def find(name_or_path: str) -> Path:
    """A recipe file: the path if it exists, else the packaged recipe of that name (with or without .yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    f = folder()
    stem = p.name[:-5] if p.name.endswith(".yaml") else p.name
    if f is not None and (f / f"{stem}.yaml").is_file() and p.parent in (Path("."), Path("recipes")):
        return f / f"{stem}.yaml"
    return p  # missing: the loader reports it with its usual message


def new(name: str, template: str, where: Path) -> Path:
    """Copy `template` (a packaged name or a file) to WHERE/NAME.yaml with output_dir runs/NAME; never overwrite."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise UserError(f"NAME: '{name}': expected letters, digits, '.', '_' or '-' (it names the file and the run)")
    src = find(template)
    if not src.is_file():
        raise UserError(f"--from: no recipe '{template}'; packaged recipes: {', '.join(names()) or 'none'}")
    target = where / f"{name}.yaml"
    if target.exists():
        raise UserError(f"{target}: exists; choose another NAME (nothing was changed)")
    text = src.read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^output_dir:.*$", f"output_dir: runs/{name}", text, count=1)
    if not n:
        text += f"\noutput_dir: runs/{name}\n"
    target.write_text(f"# Started from {src.name} (ftkit recipes new {name} --from {template}).\n" + text, encoding="utf-8")
    return target
