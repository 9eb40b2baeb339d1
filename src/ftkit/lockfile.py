"""The tested versions: `constraints.txt` beside this module is what `make test` / CI installed and passed with.

`make demo` / `make test` install with `pip install -c src/ftkit/constraints.txt`, so a fresh machine
gets exactly the tested set; `make upgrade` re-resolves to the newest releases in a separate venv, runs
the suite there and rewrites the file only when it passes (see tools/lock.py). `ftkit doctor` compares
what is installed with it. The file ships inside the package, so a pip-installed ftkit can tell too.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from importlib import resources
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement

#: the packages whose versions change what ftkit computes; doctor shows these first
KEY_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "evaluate",
                "huggingface-hub", "safetensors", "numpy")


def normalize(name: str) -> str:
    """PEP 503 name: `huggingface_hub` and `HuggingFace-Hub` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str) -> dict[str, str]:
    """`name==version` lines (comments and blank lines ignored) -> {normalized name: version}."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name.split("[")[0])] = version.strip()
    return pins


def tested() -> dict[str, str]:
    try:
        return parse(resources.files("ftkit").joinpath("constraints.txt").read_text())
    except (FileNotFoundError, OSError):
        return {}


def installed(name: str) -> Optional[str]:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def same_release(have: Optional[str], want: str) -> bool:
    """torch's CPU wheel is `2.13.0+cpu`: a local label does not make it another release."""
    return have is not None and have.split("+")[0] == want.split("+")[0]


def _requires(dist: str, extra: str = "") -> list[Requirement]:
    """`dist`'s requirements that apply here for `extra` ("" = its core); [] when it is not installed."""
    try:
        lines = md.requires(dist) or []
    except md.PackageNotFoundError:
        return []
    reqs = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            reqs.append(req)
    return reqs


def extras() -> dict[str, str]:
    """{package: the first of ftkit's extras that asks for it} for packages the core install does not list."""
    core = {normalize(r.name) for r in _requires("ftkit")}
    try:
        names = md.metadata("ftkit").get_all("Provides-Extra") or []
    except md.PackageNotFoundError:
        return {}
    out: dict[str, str] = {}
    for extra in names:
        for req in _requires("ftkit", extra):
            if normalize(req.name) not in core:
                out.setdefault(normalize(req.name), extra)
    return out


def needed(optional: dict[str, str]) -> set[str]:
    """What this install needs: ftkit's core requirements, those of extras with a package installed, and through
    every installed package its own. Without ftkit's metadata (a bare source tree), KEY_PACKAGES."""
    seeds = [r.name for r in _requires("ftkit")] or list(KEY_PACKAGES)
    seeds += [name for name in optional if installed(name) is not None]
    seen: set[str] = set()
    while seeds:
        name = normalize(seeds.pop())
        if name not in seen:
            seen.add(name)
            seeds += [r.name for r in _requires(name)]
    return seen


def compare(names: tuple[str, ...] = KEY_PACKAGES) -> list[dict]:
    """Rows {package, installed, tested, ok} for `names`, then every other pinned package that differs. A pinned
    package that is not installed and that nothing installed needs (an extra left out, or a dependency of one)
    is no difference: `not_installed()` lists those."""
    pins = tested()
    need = needed(extras())
    rows = []
    for name in dict.fromkeys([*names, *sorted(pins)]):
        want = pins.get(normalize(name))
        have = installed(name)
        if want is None or (have is None and normalize(name) not in need):
            continue
        ok = same_release(have, want)
        if name in names or not ok:
            rows.append({"package": name, "installed": have, "tested": want, "ok": ok})
    return rows


def not_installed() -> list[dict]:
    """Rows {package, tested, extra} for the pinned packages of ftkit's extras that are not installed and that
    nothing installed needs (a dependency of such a package is left out: which extra it came with is unknown)."""
    pins, optional = tested(), extras()
    need = needed(optional)
    return [{"package": name, "tested": pins[name], "extra": extra} for name, extra in optional.items()
            if name in pins and name not in need and installed(name) is None]
