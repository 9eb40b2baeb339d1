"""dpo.precompute_ref_logps: the reference log-probs of every pair, computed in one pass before training and kept in
data.cache_dir (ref_logps/KEY.safetensors, beside the token caches: the run directory is created only after the data
is prepared), so training needs no reference forward and, under finetune.strategy full, no frozen copy in memory. KEY is a hash of the model's weights, the pairs' token ids and the precision: a
`--resume` (same model, same data) reads the file instead of recomputing it; anything else computes a new one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch


def fingerprint(model, item_sets: list, precision: str) -> str:
    h = hashlib.sha256(precision.encode())
    with torch.no_grad():
        for name, p in model.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(np.float64(p.double().sum().item()).tobytes())
            h.update(np.float64(p.double().abs().sum().item()).tobytes())
    for items in item_sets:
        for it in items:
            for key in ("prompt", "chosen", "rejected"):
                h.update(it[key].tobytes())
                h.update(b"|")
    return h.hexdigest()[:20]


def compute(model, items: list, task, accelerator, batch_size: int = 8) -> np.ndarray:
    """[n, 2] (chosen, rejected) summed log-probs of the model as it is (the reference: before any adapter trains)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]["prompt"]) + len(items[i]["chosen"]) + len(items[i]["rejected"]))
    out = np.zeros((len(items), 2), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.no_grad(), accelerator.autocast():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(accelerator.device) for k, v in task.collate([items[i] for i in idx], None).items()}
            sums = task.logps(model, batch)[0].cpu().numpy()
            out[idx, 0], out[idx, 1] = sums[:len(idx)], sums[len(idx):]
    model.train(was_training)
    return out


def attach(model, item_sets: list, scorer, recipe, accelerator, log) -> None:
    """Give every item its reference log-probs ("ref": [chosen, rejected]), from the cache when it holds them;
    `scorer`: a reference-free Preference task (its `logps`), handed in by task.py, which imports this module."""
    from safetensors.numpy import load_file, save_file

    key = fingerprint(model, item_sets, accelerator.mixed_precision)
    path = Path(recipe.data.cache_dir) / "ref_logps" / f"{key}.safetensors"
    sizes = [len(items) for items in item_sets]
    with accelerator.main_process_first():  # the main process computes and writes; the others read its file
        if path.is_file():
            ref = load_file(str(path))["ref"]
            log(f"dpo.precompute_ref_logps: reference log-probs of {sum(sizes):,} pairs reused from {path}")
        else:
            import time

            t0 = time.perf_counter()
            device = next(model.parameters()).device
            model.to(accelerator.device)
            flat = [it for items in item_sets for it in items]
            ref = compute(model, flat, scorer, accelerator, recipe.train.eval_batch_size or recipe.train.batch_size)
            model.to(device)
            if accelerator.is_main_process:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                save_file({"ref": ref}, str(tmp))
                tmp.replace(path)
            log(f"dpo.precompute_ref_logps: reference log-probs of {sum(sizes):,} pairs computed in "
                f"{time.perf_counter() - t0:.1f}s, cached in {path}")
    at = 0
    for items in item_sets:
        for i, it in enumerate(items):
            items[i] = {**it, "ref": ref[at]}
            at += 1
