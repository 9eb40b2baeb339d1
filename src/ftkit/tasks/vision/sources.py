"""Where images come from: MNIST-family IDX files, an image folder, a table of image paths, parquet / hub data.

Each reader returns an `ImageSet` (tasks/vision/images.py) whose images are decoded when a batch asks for them
(IDX files are held as their uint8 bytes: 47 MB for Fashion-MNIST's 60,000 images, never as floats).
Written by hand, not with torchvision's datasets: only CUDA wheels of torchvision exist here, and with one
installed transformers' ViT imports change behaviour (see the issue). Every bad file gets one line that
names it.
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.data import tables
from ftkit.errors import UserError
from ftkit.paths import is_local, missing
from ftkit.tasks.vision.images import ArrayImages, DatasetImages, FileImages, ImageSet, concatenate, mode_channels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TABLE_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def is_idx(path: str) -> bool:
    name = os.path.basename(path).lower()
    return "-idx" in name and ("ubyte" in name or name.endswith(".idx"))


def read_idx(path: str, ndims: tuple[int, ...]) -> np.ndarray:
    """An IDX array (uint8), checked: magic number (0x0000 08 nd), dimensions and the number of bytes."""
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a cut gzip stream: EOFError; not gzip at all: BadGzipFile (OSError)
        raise UserError(f"{path}: cannot read this IDX file: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in ndims:
        magic = raw[:4].hex() if len(raw) >= 4 else "(file too short)"
        raise UserError(f"{path}: magic number {magic} is not an IDX file of unsigned bytes with "
                        f"{' or '.join(map(str, ndims))} dimensions (expected 0000080{ndims[0]}"
                        f"{'' if len(ndims) == 1 else ' or 0000080' + str(ndims[1])})")
    nd = raw[3]
    if len(raw) < 4 + 4 * nd:
        raise UserError(f"{path}: IDX header cut short ({len(raw)} bytes)")
    dims = struct.unpack(f">{nd}I", raw[4:4 + 4 * nd])
    body = len(raw) - 4 - 4 * nd
    if body != int(np.prod(dims)):
        raise UserError(f"{path}: the IDX header says {' x '.join(map(str, dims))} = {int(np.prod(dims)):,} bytes of "
                        f"data, the file holds {body:,} (truncated or wrong counts)")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def idx_labels_path(images: str) -> str:
    """MNIST's naming: train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz."""
    d, name = os.path.split(images)
    return os.path.join(d, name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1"))


def from_idx(path: str, labelled: bool) -> ImageSet:
    images = read_idx(path, (3, 4))
    labels = None
    if labelled:
        lp = idx_labels_path(path)
        if lp == path or not os.path.isfile(lp):
            raise UserError(f"{path}: its labels file {lp} is missing (IDX labels sit beside the images, "
                            f"named *-labels-idx1-ubyte*)")
        labels = read_idx(lp, (1,))
        if len(labels) != len(images):
            raise UserError(f"{lp}: {len(labels):,} labels for {len(images):,} images in {path}")
    arr = images[..., None] if images.ndim == 3 else images
    return ArrayImages(arr, path, None if labels is None else [int(v) for v in labels])


def _image_files(folder: str) -> list[str]:
    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _class_names(folder: str) -> list[str]:
    """The ImageFolder classes: subfolders holding images, sorted (the order their images are listed in)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and _image_files(str(p)))


def from_folder(folder: str, labelled: bool) -> ImageSet:
    """The ImageFolder layout: FOLDER/class_name/*.png (labels: the folder names); unlabelled data may also be
    a flat folder of images."""
    classes = _class_names(folder)
    if not classes:
        files = _image_files(folder)
        if not files:
            raise UserError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder or below")
        if labelled:
            raise UserError(f"{folder}: images but no class folders; expected the layout {folder}/CLASS_NAME/image.png")
        return FileImages(files, folder)
    paths, labels = [], []
    for c in classes:
        for f in _image_files(os.path.join(folder, c)):
            paths.append(f)
            labels.append(c)
    return FileImages(paths, folder, labels if labelled else None)


def from_table(path: str, image_column: str, label_column: str, labelled: bool, hub_config: Optional[str] = None,
               split: str = "train", delimiter: Optional[str] = None) -> ImageSet:
    """csv / jsonl of image paths (relative to the table's folder) or parquet / hub data with an Image feature.
    `delimiter`: data.delimiter (csv / tsv; default: TAB for .tsv, else the comma or the one sniffed, data/tables.py)."""
    import datasets

    datasets.disable_progress_bars()
    ext = Path(path).suffix.lower()
    local = os.path.exists(path)
    try:
        if local:
            kind = TABLE_EXTENSIONS[ext]
            kwargs = {"delimiter": _delimiter(path, ext, delimiter)} if kind == "csv" else {}
            if kwargs:
                tables.check_first_row(path, "csv", kwargs["delimiter"], "utf-8-sig", None, True)
            ds = datasets.load_dataset(kind, data_files=[path], split="train", **kwargs)
        else:
            ds = datasets.load_dataset(path, hub_config, split=split)
    except UserError:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        where = "could not be read" if local else "is not a local file and could not be loaded from the hub"
        raise UserError(f"{path}: {where}: {first}") from None
    columns = list(ds.column_names)
    shown = f"{', '.join(tables.visible(columns))}{tables.one_column_hint(columns)}"
    if image_column not in columns:
        raise UserError(f"{path}: image.image_column '{image_column}' not found; columns are: {shown}")
    if labelled and label_column not in columns:
        raise UserError(f"{path}: data.label_column '{label_column}' not found; columns are: {shown}")
    labels = None
    if labelled:
        labels = list(ds[label_column])
        feature = ds.features[label_column]
        if isinstance(feature, datasets.ClassLabel):  # hub datasets name their classes
            labels = [feature.int2str(v) for v in labels]
    if isinstance(ds.features[image_column], datasets.Image):
        return DatasetImages(ds, image_column, path, labels)
    base = os.path.dirname(os.path.abspath(path))
    files = []
    for i, v in enumerate(ds[image_column]):
        if not isinstance(v, str) or not v:
            raise UserError(f"{path}: row {i + 1}: column {image_column} holds {v!r}; expected an image path")
        files.append(v if os.path.isabs(v) else os.path.join(base, v))
    missing = next((f for f in files if not os.path.isfile(f)), None)
    if missing:
        raise UserError(f"{path}: image file not found: {missing}")
    return FileImages(files, path, labels)


def _delimiter(path: str, ext: str, given: Optional[str]) -> str:
    if given:
        return given
    found = tables.sniff(path, "utf-8-sig", None) if ext == ".csv" else None
    if found:
        print(f"{path}: read with the delimiter {tables.shown(found)}: its header row is one column with the comma "
              f"(set data.delimiter to choose)", file=sys.stderr)  # stderr: `ftkit predict` answers on stdout
    return found or tables.default(ext[1:])


def check_paths(spec, key: str) -> None:
    """Before any work: each local path of the spec exists (a hub id is left to `load`)."""
    for p in [spec] if isinstance(spec, str) else [s if isinstance(s, str) else s.path for s in spec]:
        if not os.path.exists(os.path.expanduser(p)) and \
                (is_local(p) or Path(p).suffix.lower() in (*TABLE_EXTENSIONS, *IMAGE_EXTENSIONS, ".gz")):
            raise UserError(missing(p, key, "file"))


def load(spec, data, image, key: str, labelled: bool) -> ImageSet:
    """data.train / data.validation as one ImageSet (a list of sources is concatenated)."""
    items = [spec] if isinstance(spec, str) else list(spec)
    if not items:
        raise UserError(f"{key}: empty list; expected image files, a folder or a table")
    sets = []
    for i, item in enumerate(items):
        path, rows = (item, None) if isinstance(item, str) else (item.path, item.rows)
        delimiter = (None if isinstance(item, str) else item.delimiter) or data.delimiter
        images = _one(os.path.expanduser(path), path, data, image, key, labelled, delimiter)
        local = os.path.expanduser(path)
        if rows is not None and rows < len(images) and os.path.isdir(local) and len(_class_names(local)) > 1:
            where = f"{key}[{i}].rows" if not isinstance(spec, str) else f"{key}.rows"
            raise UserError(f"{where}: {path} lists its images class folder by class folder, so its first {rows} "
                            f"would leave out whole classes; use data.train_examples: {rows} (a seeded sample, "
                            "classes in proportion) or a table of image paths in the order you want")
        sets.append(images if rows is None or rows >= len(images) else images.subset(range(rows)))
    return sets[0] if len(sets) == 1 else concatenate(sets)


def _one(path: str, given: str, data, image, key: str, labelled: bool, delimiter: Optional[str] = None) -> ImageSet:
    if os.path.isdir(path):
        return from_folder(path, labelled)
    if os.path.isfile(path):
        if is_idx(path):
            return from_idx(path, labelled)
        if Path(path).suffix.lower() in TABLE_EXTENSIONS:
            return from_table(path, image.image_column, data.label_column, labelled, delimiter=delimiter)
        if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
            if labelled:
                raise UserError(f"{key}: {given} is a single image; labelled data is a class folder, IDX files or a table")
            return FileImages([path], path)
        raise UserError(f"{key}: {given}: not image data; expected an image folder, IDX files (*-idx3-ubyte[.gz]), "
                        f"a table ({', '.join(TABLE_EXTENSIONS)}) or image files")
    if is_local(given) or Path(given).suffix.lower() in (*TABLE_EXTENSIONS, *IMAGE_EXTENSIONS, ".gz"):
        raise UserError(missing(given, key, "file"))
    return from_table(given, image.image_column, data.label_column, labelled, data.hub_config)


__all__ = ["load", "read_idx", "mode_channels"]
