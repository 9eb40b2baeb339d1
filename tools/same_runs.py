"""Behaviour unchanged across a refactoring: the task-contract cases (tests/test_task_contract.py), 5 steps each, then
`ftkit eval` of the saved model, trained and evaluated by whichever ftkit is first on sys.path. Writes every step's
loss, the final metrics and the evaluation's numbers per task, so two trees can be compared exactly.

  git worktree add /tmp/before HEAD
  PYTHONPATH=/tmp/before/src python tools/same_runs.py --out /tmp/before.json cls ner qa seq2seq sft dpo
  python tools/same_runs.py --out /tmp/after.json cls ner qa seq2seq sft dpo
  python tools/same_runs.py --compare /tmp/before.json /tmp/after.json

Tasks that train a new tokenizer (seq2seq's Unigram vocabulary is not the same from run to run) take
`--tokenizers DIR` on both runs: the first trains it there, the second reuses it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def run(names: list[str], tokenizers: str = None) -> dict:
    import ftkit
    from ftkit import registry
    from ftkit.recipe import validate
    from ftkit.workflows import train

    from conftest import run_cli
    from test_task_contract import CASES

    print(f"ftkit from {Path(ftkit.__file__).parent}", file=sys.stderr)
    out = {}
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            case = CASES[name](Path(tmp))
            case["train"] = {**case["train"], "max_steps": 5}
            if tokenizers and "tokenizer" in case:  # a Unigram vocabulary trains differently from run to run: share one
                case["tokenizer"] = {**case["tokenizer"], "path": str(Path(tokenizers) / name)}
            recipe = validate(case)
            summary = train.run(recipe, log=lambda *_: None, family=registry.entry(name).family)
            run_dir = Path(recipe.output_dir)
            losses = [r["loss"] for r in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
            code, stdout, err = run_cli("eval", "--model", str(run_dir), "--json", "--batch-size", "8")
            assert code == 0, err
            result = json.loads(stdout)
            numbers = lambda d: {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}  # noqa: E731
            out[name] = {"losses": losses, "final": numbers(summary["final_metrics"]),
                         "eval": {k: v for k, v in numbers(result).items() if not k.endswith("_s") and k != "seconds"}}
            print(f"{name}: losses {[round(x, 6) for x in losses]}; final {out[name]['final']}", file=sys.stderr)
    return out


def compare(a: dict, b: dict) -> int:
    bad = 0
    for name in a:
        same = a[name] == b.get(name)
        bad += not same
        print(f"{name:8s} {'identical' if same else 'DIFFERENT'}: {len(a[name]['losses'])} losses, "
              f"{len(a[name]['final'])} final metrics, {len(a[name]['eval'])} evaluation numbers")
        if not same:
            for part in ("losses", "final", "eval"):
                if a[name][part] != b.get(name, {}).get(part):
                    print(f"  {part}: {a[name][part]}\n  vs     {b.get(name, {}).get(part)}")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="*")
    ap.add_argument("--out")
    ap.add_argument("--compare", nargs=2)
    ap.add_argument("--tokenizers", help="keep the tasks' new tokenizers here: the first run trains them, the next reuse them")
    args = ap.parse_args()
    if args.compare:
        return compare(*(json.loads(Path(p).read_text()) for p in args.compare))
    Path(args.out).write_text(json.dumps(run(args.tasks, args.tokenizers), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
