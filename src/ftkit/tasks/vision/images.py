"""Images as the engine sees them: a sequence of {"image": uint8 HxWxC, "labels": class id} decoded on access.

An `ImageSet` is what a reader found (tasks/vision/sources.py): raw images (arrays, files, or rows of a
datasets table) and raw labels. `Images` puts the recipe's settings over it: the channel count and size
every image is converted to (Pillow's rules: L <-> RGB, bilinear resize), and class ids (tasks/vision/checks.py
scans a set once before training). An image that cannot be decoded raises `Unreadable`, which names it.
`pixel_stats` gives the normalisation statistics from the training images.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ftkit.errors import UserError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def mode_channels(mode: str) -> int:
    return 1 if mode in GRAY_MODES else 3


class Unreadable(UserError):
    """An image that cannot be decoded: `where` names it, `why` is the decoder's reason. A UserError (one line,
    exit 2) for callers that stop on it; the pre-training scan and `ftkit predict` count it and go on."""

    def __init__(self, where: str, why):
        text = str(why).replace(f" {where!r}", "")  # Pillow repeats the path ("cannot identify image file '...'")
        self.where, self.why = where, " ".join(text.split()) or type(why).__name__
        super().__init__(f"{where}: cannot read this image: {self.why}")


def _decoder_errors():
    from PIL import Image

    # DecompressionBombError: an image over twice Pillow's pixel limit (not an OSError)
    return OSError, SyntaxError, ValueError, Image.DecompressionBombError


class ImageSet:
    """Raw images + raw labels (None: unlabelled)."""
    source: str
    labels: Optional[list]

    def __len__(self) -> int:
        raise NotImplementedError

    def pil(self, i: int):
        """Image i as a PIL image (as stored)."""
        raise NotImplementedError

    def array(self, i: int) -> Optional[np.ndarray]:
        """Image i as a uint8 HxWxC array when it is held as one (no decoding), else None."""
        return None

    def where(self, i: int) -> str:
        return f"{self.source}: image {i + 1}"

    def subset(self, positions: Sequence[int]) -> "ImageSet":
        return Subset(self, np.asarray(positions, dtype=np.int64))


class ArrayImages(ImageSet):
    def __init__(self, arr: np.ndarray, source: str, labels: Optional[list] = None):
        self.arr, self.source, self.labels = arr, source, labels

    def __len__(self) -> int:
        return len(self.arr)

    def array(self, i: int) -> np.ndarray:
        return self.arr[i]

    def pil(self, i: int):
        from PIL import Image

        a = self.arr[i]
        return Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)


class FileImages(ImageSet):
    def __init__(self, paths: list[str], source: str, labels: Optional[list] = None):
        self.paths, self.source, self.labels = paths, source, labels

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, i: int) -> str:
        return self.paths[i]

    def pil(self, i: int):
        from PIL import Image

        try:
            img = Image.open(self.paths[i])
            img.load()  # decode now: a truncated file fails here, named
            return img
        except _decoder_errors() as e:
            raise Unreadable(self.paths[i], e) from None


class DatasetImages(ImageSet):
    """Rows of a datasets table whose image column is an Image feature (parquet, hub)."""

    def __init__(self, ds, column: str, source: str, labels: Optional[list] = None):
        self.ds, self.column, self.source, self.labels = ds, column, source, labels

    def __len__(self) -> int:
        return len(self.ds)

    def pil(self, i: int):
        try:
            return self.ds[int(i)][self.column]
        except _decoder_errors() as e:
            raise Unreadable(self.where(i), e) from None


class Subset(ImageSet):
    def __init__(self, base: ImageSet, positions: np.ndarray):
        self.base, self.positions, self.source = base, positions, base.source
        self.labels = None if base.labels is None else [base.labels[int(p)] for p in positions]

    def __len__(self) -> int:
        return len(self.positions)

    def pil(self, i: int):
        return self.base.pil(int(self.positions[i]))

    def array(self, i: int):
        return self.base.array(int(self.positions[i]))

    def where(self, i: int) -> str:
        return self.base.where(int(self.positions[i]))


class Concatenated(ImageSet):
    def __init__(self, sets: list[ImageSet]):
        self.sets, self.source = sets, " + ".join(s.source for s in sets)
        self.starts = np.cumsum([0] + [len(s) for s in sets])
        labelled = [s.labels is not None for s in sets]
        if any(labelled) and not all(labelled):
            raise UserError(f"{self.source}: some sources have labels and some do not")
        self.labels = [v for s in sets for v in s.labels] if all(labelled) else None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _at(self, i: int):
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        return self.sets[k], i - int(self.starts[k])

    def pil(self, i: int):
        s, j = self._at(i)
        return s.pil(j)

    def array(self, i: int):
        s, j = self._at(i)
        return s.array(j)

    def where(self, i: int) -> str:
        s, j = self._at(i)
        return s.where(j)


def concatenate(sets: list[ImageSet]) -> ImageSet:
    return Concatenated(sets)


class Images:
    """The engine's items: image i converted to `channels` and `size` x `size`, with its class id."""

    def __init__(self, base: ImageSet, channels: int, size: int, label_ids: Optional[np.ndarray] = None):
        self.base, self.channels, self.size, self.label_ids = base, channels, size, label_ids

    def __len__(self) -> int:
        return len(self.base)

    def image(self, i: int) -> np.ndarray:
        a = self.base.array(i)
        if a is not None and a.shape == (self.size, self.size, self.channels):
            return a
        from PIL import Image

        img = self.base.pil(i) if a is None else Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        img = img.convert("L" if self.channels == 1 else "RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.BILINEAR)  # the resample the saved image processor uses
        out = np.asarray(img, dtype=np.uint8)
        return out[..., None] if out.ndim == 2 else out

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.image(int(i))}
        if self.label_ids is not None:
            item["labels"] = int(self.label_ids[int(i)])
        return item

    @property
    def strata(self) -> Optional[list]:
        """Class of each item (eval sampling by class) without decoding any image."""
        return None if self.label_ids is None else [int(v) for v in self.label_ids]


def pixel_stats(items: Images, sample: int, seed: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels scaled to [0, 1], over a seeded sample of `sample` images."""
    n = len(items)
    pick = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    total = np.zeros(items.channels)
    total_sq = np.zeros(items.channels)
    count = 0
    for i in pick:
        x = items.image(int(i)).reshape(-1, items.channels).astype(np.float64) / 255.0
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += len(x)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]


def class_names(raw_labels: list, label_map: dict) -> tuple[list[str], list[str]]:
    """(names of the raw labels, one per image; the classes in order: numbers by value, names sorted), with
    data.label_map applied (`{0: T-shirt/top, ...}`)."""
    def name(v) -> str:
        for k in (v, str(v)):
            if k in label_map:
                return str(label_map[k])
        if isinstance(v, str) and v.lstrip("-").isdigit() and int(v) in label_map:
            return str(label_map[int(v)])
        return str(v)

    distinct = sorted(set(raw_labels), key=lambda v: (not isinstance(v, (int, np.integer)), v if isinstance(v, (int, np.integer)) else str(v)))
    ordered = list(dict.fromkeys(name(v) for v in distinct))
    return [name(v) for v in raw_labels], ordered
