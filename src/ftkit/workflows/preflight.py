"""Checks that run before any worker starts: a bad recipe fails in a second, not after minutes of set-up.

The data files exist and are UTF-8 text, the tokenizer and model paths exist, and the output
directory is safe to use. Deeper checks (columns, special tokens, vocabulary size) happen in the
workflows, still before training, with the same one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ftkit import registry
from ftkit.data import sources
from ftkit.engine import rundir
from ftkit.engine.checkpoint_weights import unfit
from ftkit.errors import UserError
from ftkit.models.build import check_model_path
from ftkit.paths import is_local, missing, resolve_package_path
from ftkit.recipe import dump_recipe, validate
from ftkit.recipe.load import portable
from ftkit.recipe.schema import Recipe
from ftkit.tasks.vision import sources as image_sources


def preflight(recipe: Recipe, resume: bool = False, overwrite: bool = False, log=print) -> None:
    rundir.check(recipe.output_dir, resume, overwrite)
    if resume:
        check_resume(recipe)
    images = registry.entry(recipe.task).images
    for key, spec in (("data.train", recipe.data.train), ("data.validation", recipe.data.validation)):
        if spec is None:
            continue
        if images:  # image folders, IDX files, tables of paths: read (and checked) by tasks/vision/sources.py
            image_sources.check_paths(spec, key)
            continue
        for f in sources.resolve_files(spec, key) or []:
            if Path(f).stat().st_size == 0:
                raise UserError(f"{f}: empty file ({key})")
            if not f.endswith((".parquet", ".gz")):  # binary: their readers decode them (dpo reads .jsonl.gz)
                sources.check_utf8(f, recipe.data.encoding)
    if recipe.model.from_pretrained:
        check_model_path(recipe.model.from_pretrained)
    tok = recipe.tokenizer
    if tok is not None and tok.kind is None and is_local(tok.path) and \
            not Path(resolve_package_path(tok.path, "tokenizer.path")).is_dir():
        raise UserError(missing(tok.path, "tokenizer.path"))


def start_run(accelerator, recipe: Recipe, resume: bool, overwrite: bool, log=print, steps: Optional[int] = None) -> None:
    """Once every check has passed: the main process creates output_dir (moving an earlier run aside with
    --overwrite), marks it running and saves the recipe (what --resume checks against); the others wait.
    `--resume` of a finished run that already reached `steps` stops here, before anything is written."""
    if resume and steps is not None:
        rundir.check_unfinished(Path(recipe.output_dir), steps)
    if accelerator.is_main_process:
        out = rundir.prepare(recipe.output_dir, resume, overwrite, log)
        rundir.write_status(out, "running", recipe=recipe.name, world_size=accelerator.num_processes, total_steps=steps)
        (out / "recipe.yaml").write_text(dump_recipe(portable(recipe)))
    accelerator.wait_for_everyone()


# Changing these between a run and its resume would mix two different trainings.
_RESUME_FIXED = ("task", "tokenizer", "model", "data")


def check_resume(recipe: Recipe) -> None:
    """`--resume` only continues the same training: the same task, tokenizer, model and data (train.* may change)."""
    import yaml

    saved = Path(recipe.output_dir) / "recipe.yaml"
    if not saved.is_file():
        return
    before = comparable(yaml.safe_load(saved.read_text()) or {})
    now = portable(recipe).model_dump(mode="json")  # runs saved before paths were absolute compare equal too
    for section in _RESUME_FIXED:
        diff = _first_difference(before.get(section), now.get(section), section)
        if diff:
            raise UserError(f"--resume: {recipe.output_dir} was trained with a different {diff}; "
                            f"resume with the same {section} settings or choose another output_dir")


def comparable(raw: dict) -> dict:
    """A saved recipe.yaml with its paths made absolute (one that no longer validates: as it is)."""
    try:
        return portable(validate(raw, source="recipe.yaml")).model_dump(mode="json")
    except UserError:
        return raw


def _first_difference(a, b, key: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{key}.{k}")
            if d:
                return d
        return None
    return None if a == b else f"{key} ({a!r} then, {b!r} now)"


def check_checkpoint_fits(output_dir: str, model) -> None:
    """Before resuming: the latest checkpoint's weights must have this model's names and shapes; one that holds only
    the trainable weights needs the frozen base the run trained on (engine/checkpoint_weights.py)."""
    from safetensors import safe_open

    ckpt = rundir.latest_checkpoint(Path(output_dir))
    if ckpt is None:
        return
    why = unfit(rundir.read_json(ckpt / rundir.STATE_FILE), model)
    if why:
        raise UserError(f"--resume: checkpoint {ckpt} does not fit this model and recipe: {why}")
    files = sorted(ckpt.glob("model*.safetensors"))
    if not files:
        return  # sharded (FSDP / DeepSpeed) states are checked when accelerate loads them
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(files[0]), framework="pt") as f:
            for key in f.keys():
                got = tuple(f.get_slice(key).get_shape())
                if shapes.get(key) != got:
                    want = shapes.get(key, "no such weight")
                    raise UserError(f"--resume: checkpoint {ckpt} does not fit this model and recipe: "
                                    f"{key} is {got} there, {want} here")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"--resume: checkpoint {files[0]} is unreadable: {str(e).splitlines()[0][:200]}") from None
