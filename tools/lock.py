"""Write or prepare the tested-versions lock (src/ftkit/constraints.txt); used by the Makefile.

  python tools/lock.py write VENV_PYTHON   # freeze that venv (after its suite passed) into the lock
  python tools/lock.py unbounded           # pyproject's dependencies without upper bounds, one per line

`make upgrade` installs the unbounded requirements (the newest releases) into .venv-upgrade, runs the
suite with them and only then calls `write`: an upgrade is a deliberate, tested step, and the diff of
constraints.txt shows exactly what moved. Widen pyproject's upper bounds to match before committing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "src" / "ftkit" / "constraints.txt"
EXTRAS = ("dev", "docs", "logging", "plots", "gguf", "seq2seq", "wandb", "mlflow")  # the Makefile's STAMP rule installs these
# Installed by the Makefile with --no-deps (a packaged model, not a library); pinned all the same.
HEADER = """# The exact versions `make test` passed with (CI installs these: pip install -c src/ftkit/constraints.txt).
# Written by `{command}` on {date} (python {python}). Do not edit by hand: run `make upgrade`
# (newest releases, suite, then this file) or `make lock` (freeze the current .venv after its suite passed).
"""


def requirements() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in EXTRAS:
        reqs += meta.get("optional-dependencies", {}).get(extra, [])
    return reqs


def unbounded(req: str) -> str:
    """`transformers>=5.23,<5.25` -> `transformers>=5.23`: keep the lower bound, drop the upper ones."""
    name = re.match(r"[A-Za-z0-9_.\-\[\]]+", req).group(0)
    kept = [c.strip() for c in req[len(name):].split(",") if c.strip() and not c.strip().startswith(("<", "~="))]
    return name + ",".join(kept)


def write(python: str, command: str) -> None:
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout
    lines = []
    for line in frozen.splitlines():
        if "==" not in line or line.startswith(("-e", "ftkit==")):
            continue
        name, version = line.split("==", 1)
        if name.lower() == "torch":  # the CPU wheel's local label (+cpu): the release is what is pinned
            version = version.split("+")[0]
        lines.append(f"{name}=={version}")
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], check=True,
                             capture_output=True, text=True).stdout.strip()
    LOCK.write_text(HEADER.format(command=command, date=time.strftime("%Y-%m-%d"), python=version)
                    + "\n".join(sorted(lines, key=str.lower)) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(lines)} packages")


def main(argv: list[str]) -> int:
    if argv[:1] == ["unbounded"]:
        print("\n".join(unbounded(r) for r in requirements()))
        return 0
    if len(argv) == 3 and argv[0] == "write":
        write(argv[1], argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
