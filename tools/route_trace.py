"""The route of `ftkit finetune --task NAME` (or pretrain), traced: what a reader follows from the command to the
family's code and through its steps (issue 30: "the route traced by hand, target <= 12 modules").

    python tools/route_trace.py ner

Runs the task contract's tiny recipe for NAME (tests/test_task_contract.py, 2 steps, in a temporary directory) under
sys.settrace and prints
  1. the ftkit frames on the stack when the family package's code first runs (command -> family);
  2. the modules the family's steps call (calls made by tasks/family.py and by the package's task module);
  3. the route: the modules of 1 and 2 plus the engine's loop, in first-visit order, and how often consecutive
     stops of the route climb back up a layer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RANK = {"ftkit.cli": 0, "ftkit.workflows": 1, "ftkit.tasks": 2, "ftkit.data": 3, "ftkit.models": 3, "ftkit.engine": 4,
        "ftkit.recipe": 5, "ftkit.registry": 6}


def layer(module: str) -> int:
    found = [k for k in RANK if module == k or module.startswith(k + ".")]
    return RANK[max(found, key=len)] if found else 7


def main() -> None:
    from ftkit import registry
    from ftkit.cli import main as ftkit

    from test_task_contract import CASES

    name = sys.argv[1] if len(sys.argv) > 1 else "ner"
    entry = registry.entry(name)
    package = entry.module if entry.module.count(".") == 2 else entry.module.rsplit(".", 1)[0]
    steps_of = {"ftkit.tasks.family", entry.module, f"{entry.module}.task"}
    tmp = Path(tempfile.mkdtemp())
    (tmp / "r.yaml").write_text(yaml.safe_dump(CASES[name](tmp)))
    reach: list[str] = []
    steps: dict[str, None] = {}

    def tracer(frame, event, arg):
        if event != "call":
            return None
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("ftkit") or frame.f_code.co_name.startswith("<"):
            return None
        if not reach and module.startswith(package):
            f = frame
            while f is not None:
                m = f.f_globals.get("__name__", "")
                if m.startswith("ftkit") and not f.f_code.co_name.startswith("<"):
                    reach.append(f"{m}.{f.f_code.co_name}")
                f = f.f_back
            reach.reverse()
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if caller in steps_of and module != caller and not module.startswith("ftkit.cli"):  # not the log callback
            steps.setdefault(module)
        return None

    sys.argv = ["ftkit", "pretrain" if entry.family == registry.PRETRAIN else "finetune", "--task", name, "-r",
                str(tmp / "r.yaml")]
    sys.settrace(tracer)
    try:
        ftkit()
    except SystemExit:
        pass
    finally:
        sys.settrace(None)
    to_family = list(dict.fromkeys(s.rsplit(".", 1)[0] for s in reach))
    route = list(dict.fromkeys([*to_family, *sorted(steps_of & {"ftkit.tasks.family"}), *steps, "ftkit.engine.loop"]))
    climbs = sum(1 for a, b in zip(route, route[1:]) if layer(b) < layer(a))
    print(f"1. command -> family: {len(reach)} frames in {len(to_family)} modules")
    for stop in reach:
        print(f"     {stop}")
    print(f"2. the family's steps call {len(steps)} other modules: {', '.join(steps)}")
    print(f"3. the route: {len(route)} modules, {climbs} climbs back up a layer")
    for m in route:
        print(f"     {m}")


if __name__ == "__main__":
    main()
