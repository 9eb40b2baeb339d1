"""The run directory: never overwrite an earlier run; write checkpoints atomically.

Layout of `output_dir`:
  run.json               status (running / finished / stopped), recipe name, start time
  checkpoints/step-N/    accelerate `save_state` + trainer_state.json (resumable)
                         (a frozen base is not saved: engine/checkpoint_weights.py)
  metrics.jsonl          one line per evaluation
  metrics.json           final and best metrics, steps, tokens, train_runtime_s
  config.json, model.safetensors, tokenizer files, recipe.yaml   (the final model)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Optional

from ftkit.errors import NothingToDo, UserError

RUN_FILE = "run.json"
STATE_FILE = "trainer_state.json"


def check(output_dir: str, resume: bool, overwrite: bool) -> Path:
    """Fail early, with no side effects, if `output_dir` cannot be used as asked."""
    out = Path(output_dir)
    if resume and overwrite:
        raise UserError("--resume and --overwrite: choose one (--resume continues the run in output_dir; "
                        "--overwrite moves it aside and starts a new one)")
    if out.exists() and not out.is_dir():
        raise UserError(f"output_dir: {out} exists and is a file; expected a directory for the run")
    if resume:
        if latest_checkpoint(out) is None:
            raise UserError(f"--resume: no checkpoint under {out / 'checkpoints'} to resume from")
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        status = {"running": "unfinished (or still running)"}.get(read_status(out), read_status(out))
        what = f"an earlier {status} run" if status else "files"
        raise UserError(f"output_dir: {out} holds {what}; pass --resume to continue it, "
                        f"--overwrite to move it aside, or choose another output_dir")
    return out


def prepare(output_dir: str, resume: bool, overwrite: bool, log=print) -> Path:
    """Check `output_dir`, then create it; with `overwrite`, move an earlier run aside (never delete)."""
    out = check(output_dir, resume, overwrite)
    if not resume and out.is_dir() and any(out.iterdir()):
        aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(aside)
        log(f"moved the earlier run {out} to {aside}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_unfinished(out: Path, steps: int) -> None:
    """`--resume` of a finished run whose budget (`steps`) it already reached: change nothing, say so.

    Resuming used to re-save the last weights over the kept best model and rewrite metrics.json and
    recipe.yaml. A finished run is only continued when the recipe asks for more steps than it ran.
    """
    ckpt = latest_checkpoint(out)
    if read_status(out) != "finished" or ckpt is None:
        return
    state = json.loads((ckpt / STATE_FILE).read_text())
    done = int(state.get("progress", {}).get("step", ckpt.name.split("-")[1]))
    budget = int(state.get("total_steps", done))  # an early-stopped run finished before its budget: still finished
    if steps <= budget:
        raise NothingToDo(f"{out}: this run finished at step {done} of {budget} (the recipe asks for {steps}); "
                          f"nothing to do, nothing changed. To train it further, raise train.max_steps or "
                          f"train.epochs and --resume; to start again, --overwrite (the run is moved aside)")


def read_status(out: Path) -> Optional[str]:
    try:
        return json.loads((out / RUN_FILE).read_text()).get("status")
    except (OSError, ValueError):
        return None


def write_status(out: Path, status: str, **extra) -> None:
    data = {}
    try:
        data = json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        pass
    data.update(status=status, updated=time.strftime("%Y-%m-%dT%H:%M:%S"), **extra)
    write_json_atomic(out / RUN_FILE, data)


def read_json(path: Path) -> dict:
    """A run's JSON file (run.json, metrics.json) as a dict; {} when missing, unreadable or being replaced."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(out: Path) -> Optional[Path]:
    found = checkpoints(out)
    return found[-1] if found else None


def save_checkpoint(accelerator, out: Path, step: int, state: dict, keep: int) -> Path:
    """`save_state` into a temp dir, add our JSON state, then rename: a kill mid-save leaves the old ones intact."""
    root = out / "checkpoints"
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every rank has written its RNG state into tmp before it is renamed
    if accelerator.is_main_process:
        write_json_atomic(tmp / STATE_FILE, state)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        prune_checkpoints(out, keep)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (keep 0: all of them)."""
    found = checkpoints(out)
    for old in found[:len(found) - keep] if keep < len(found) else []:
        shutil.rmtree(old, ignore_errors=True)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load_checkpoint(accelerator, path: Path) -> dict:
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())
