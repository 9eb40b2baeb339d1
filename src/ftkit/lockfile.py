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


def compare(names: tuple[str, ...] = KEY_PACKAGES) -> list[dict]:
    """Rows {package, installed, tested, ok} for `names`, then every other pinned package that differs."""
    pins = tested()
    rows = []
    for name in dict.fromkeys([*names, *sorted(pins)]):
        want = pins.get(normalize(name))
        have = installed(name)
        if want is None:
            continue
        ok = same_release(have, want)
        if name in names or not ok:
            rows.append({"package": name, "installed": have, "tested": want, "ok": ok})
    return rows
