"""`ftkit predict` with an image classifier: one JSON object per image.

Inputs: image files and folders (every image file below them, in sorted order) given on the command line,
or image paths on stdin, one per line. Each image is converted exactly as the saved image processor says
(its size; RGB, as HF's pipeline does), so the answers are those of `pipeline("image-classification")`.
A file that is missing or cannot be decoded is yielded as `Skipped` and the others are still answered:
one broken photo in a folder of 10,000 does not cost the other 9,999 answers.
"""

from __future__ import annotations

import os
from itertools import islice
from typing import Iterator

from ftkit.errors import UserError
from ftkit.models.classifier import checkpoint_labels
from ftkit.tasks.spec import PredictRequest, Skipped
from ftkit.tasks.vision.classify import processor_settings
from ftkit.tasks.vision.entry import IMAGE_CLS
from ftkit.tasks.vision.images import FileImages, Images, Unreadable
from ftkit.tasks.vision.pixels import to_pixels
from ftkit.tasks.vision.sources import IMAGE_EXTENSIONS


def image_paths(sources: list[str], stdin) -> Iterator[str]:
    from pathlib import Path

    if not sources or sources == ["-"]:
        import sys

        for line in stdin if stdin is not None else sys.stdin:
            if line.strip():
                yield line.strip()
        return
    for s in sources:
        if os.path.isdir(s):
            found = sorted(str(p) for p in Path(s).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise UserError(f"FILE: {s}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
            yield from found
        else:  # a file, or a missing one: answered as "not found" in its place
            yield s


def predict(req: PredictRequest) -> Iterator:
    """Yield {"image": path, "label": name, "probability": p} (+ "scores" with --all-scores) per image, in input
    order; Skipped(path, why) for a file that is missing or cannot be read."""
    import numpy as np
    import torch

    labels = checkpoint_labels(req.model.config, IMAGE_CLS)
    if labels is None:
        raise UserError(f"--model: {req.model_dir} is not an image classifier")
    size, mean, std = processor_settings(req.preprocessor)
    paths = image_paths(req.sources, req.stdin)
    with torch.no_grad():
        while True:
            chunk = list(islice(paths, req.batch_size))
            if not chunk:
                return
            images = Images(FileImages(chunk, "FILE"), 3, size)
            arrays, failed = [], {}
            for i, path in enumerate(chunk):
                if not os.path.isfile(path):
                    failed[i] = "file not found"
                    continue
                try:
                    arrays.append(images.image(i))
                except Unreadable as e:
                    failed[i] = f"cannot read this image: {e.why}"
            probs = iter([])
            if arrays:
                pixels = to_pixels(np.stack(arrays), mean, std)
                probs = iter(torch.softmax(req.model(pixel_values=pixels).logits.float(), -1).tolist())
            for i, path in enumerate(chunk):
                if i in failed:
                    yield Skipped(path, failed[i])
                    continue
                p = next(probs)
                best = max(range(len(p)), key=p.__getitem__)
                out = {"image": path, "label": labels[best], "probability": round(p[best], 6)}
                if req.all_scores:
                    out["scores"] = {labels[j]: round(v, 6) for j, v in enumerate(p)}
                yield out
