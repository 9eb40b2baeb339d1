"""`ftkit predict` with an image classifier: one JSON object per image.

Inputs: image files and folders (every image file below them, in sorted order) given on the command line,
or image paths on stdin, one per line. Each image is converted exactly as the saved image processor says
(its size; RGB, as HF's pipeline does), so the answers are those of `pipeline("image-classification")`.
"""

from __future__ import annotations

import os
from itertools import islice
from typing import Iterator

from ftkit.errors import UserError
from ftkit.tasks.spec import PredictRequest


def image_paths(sources: list[str], stdin) -> Iterator[str]:
    from pathlib import Path

    from ftkit.data.image_sources import IMAGE_EXTENSIONS

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
        elif os.path.isfile(s):
            yield s
        else:
            raise UserError(f"FILE: not found: {s}")


def predict(req: PredictRequest) -> Iterator[dict]:
    """Yield {"image": path, "label": name, "probability": p} (+ "scores" with --all-scores) per image."""
    import numpy as np
    import torch

    from ftkit.data.images import FileImages, Images
    from ftkit.data.pixels import to_pixels
    from ftkit.models.classifier import checkpoint_labels
    from ftkit.tasks.image_cls import processor_settings

    labels = checkpoint_labels(req.model.config, "image-cls")
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
            for path in chunk:
                if not os.path.isfile(path):
                    raise UserError(f"FILE: not found: {path}")
            pixels = to_pixels(np.stack([images.image(i) for i in range(len(chunk))]), mean, std)
            probs = torch.softmax(req.model(pixel_values=pixels).logits.float(), -1).tolist()
            for path, p in zip(chunk, probs):
                best = max(range(len(p)), key=p.__getitem__)
                out = {"image": path, "label": labels[best], "probability": round(p[best], 6)}
                if req.all_scores:
                    out["scores"] = {labels[j]: round(v, 6) for j, v in enumerate(p)}
                yield out
