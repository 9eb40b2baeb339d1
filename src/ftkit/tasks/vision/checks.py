"""The scan of a recipe's images before any work: every image decoded once, every problem reported together.

A folder of photos often has several problems at once (a few grayscale images among RGB ones, many sizes, a
broken file). Failing on the first one costs the user a run per problem, so the scan goes through every image,
counts each problem with one example file, and raises ONE line that lists them all with the recipe lines that
fix them together ("fix: set image.channels: 3 and image.size: 224 in the recipe").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ftkit.errors import UserError
from ftkit.tasks.vision.images import ArrayImages, ImageSet, Subset, Unreadable, mode_channels

LARGEST_SUGGESTED_SIZE = 224  # what pre-trained ViTs take; larger photos are suggested down to it, never up
SHOWN = 3  # sizes named in the message; the rest are counted


@dataclass
class Shape:
    channels: int
    height: int
    width: int


@dataclass
class Scan:
    """What one source's images hold: per channel count and per size, how many images and the first one."""
    key: str
    total: int
    first: Optional[Shape] = None
    unreadable: int = 0
    first_unreadable: Optional[Unreadable] = None
    channels: dict = field(default_factory=dict)  # channels -> [count, where]
    sizes: dict = field(default_factory=dict)  # (height, width) -> [count, where]


def _tally(table: dict, value, where: str, n: int = 1) -> None:
    entry = table.setdefault(value, [0, where])
    entry[0] += n


def _held_as_one_array(images: ImageSet) -> bool:
    return isinstance(images, ArrayImages) or (isinstance(images, Subset) and isinstance(images.base, ArrayImages))


def scan(images: ImageSet, key: str) -> Scan:
    """Decode every image once (a bad file is found now, not minutes into training) and tally channels and sizes."""
    s = Scan(key, len(images))
    for i in range(len(images)):
        a = images.array(i)
        try:
            if a is not None:
                shape = Shape(a.shape[-1], a.shape[0], a.shape[1])
            else:
                img = images.pil(i)
                shape = Shape(mode_channels(img.mode), img.height, img.width)
        except Unreadable as e:
            s.unreadable += 1
            s.first_unreadable = s.first_unreadable or e
            continue
        s.first = s.first or shape
        if _held_as_one_array(images):  # one uint8 array: every image has the first one's shape
            _tally(s.channels, shape.channels, images.where(i), len(images))
            _tally(s.sizes, (shape.height, shape.width), images.where(i), len(images))
            break
        _tally(s.channels, shape.channels, images.where(i))
        _tally(s.sizes, (shape.height, shape.width), images.where(i))
    return s


def _most(table: dict):
    """The value most images have (the first seen on a tie)."""
    return max(table, key=lambda v: table[v][0])


def _images(n: int) -> str:
    return f"{n:,} image{'s' if n != 1 else ''}"


def _size_text(hw) -> str:
    return f"{hw[1]}x{hw[0]}"


def inspect(sources: dict[str, ImageSet], channels: Optional[int], size: Optional[int]) -> Shape:
    """Scan each source ({recipe key: images}); channels must agree over all of them and sizes within each, where
    the recipe fixes none (`channels`, `size`: None), and the images must be square when sizes are not fixed.
    Every problem found goes into one UserError. Returns the shape of the first readable image."""
    for key, images in sources.items():
        if len(images) == 0:
            raise UserError(f"{key}: no images")
    scans = [scan(images, key) for key, images in sources.items()]
    several = len(scans) > 1
    problems, fixes = [], []  # fixes: (recipe line, what it does)
    unreadable = [s for s in scans if s.unreadable]
    for s in unreadable:
        e = s.first_unreadable
        problems.append(f"{s.key + ': ' if several else ''}{s.unreadable:,} of {_images(s.total)} cannot be read "
                        f"({'e.g. ' if s.unreadable > 1 else ''}{e.where}: {e.why})")
    pooled: dict = {}
    for s in scans:
        for c, (n, where) in s.channels.items():
            _tally(pooled, c, where, n)
    if channels is None and len(pooled) > 1:
        ranked = sorted(pooled.items(), key=lambda kv: -kv[1][0])
        problems.append("mixed channel counts: " + ", ".join(
            f"{n:,} {'RGB' if c == 3 else 'grayscale'} (e.g. {where})" for c, (n, where) in ranked))
        top = [c for c, (n, _) in ranked if n == ranked[0][1][0]]
        c = 3 if 3 in top else top[0]
        fixes.append((f"image.channels: {c}", "converted to " + ("RGB" if c == 3 else "grayscale")))
    if size is None:
        sizes: dict = {}
        before = len(problems)
        for s in scans:
            for hw, (n, where) in s.sizes.items():
                _tally(sizes, hw, where, n)
            ranked = sorted(s.sizes.items(), key=lambda kv: -kv[1][0])
            if len(ranked) > 1:
                shown = ", ".join(f"{n:,} {'are' if n != 1 else 'is'} {_size_text(hw)} (e.g. {where})"
                                  for hw, (n, where) in ranked[:SHOWN])
                rest = ranked[SHOWN:]
                if rest:
                    shown += f", and {_images(sum(n for _, (n, _w) in rest))} in {len(rest):,} other sizes"
                problems.append(f"{s.key + ': ' if several else ''}mixed image sizes: {shown}")
            elif ranked and ranked[0][0][0] != ranked[0][0][1]:
                problems.append(f"{s.key + ': ' if several else ''}the images are {_size_text(ranked[0][0])}, not square")
        if len(problems) > before:  # the side most images have (train and validation may differ: resized alike)
            h, w = _most(sizes)
            side = min(h, w, LARGEST_SUGGESTED_SIZE)
            fixes.append((f"image.size: {side}", f"resized to {side}x{side}"))
    if problems:
        fix = ""
        if fixes:
            fix = f"set {' and '.join(f for f, _ in fixes)} in the recipe (every image is {' and '.join(d for _, d in fixes)})"
        if unreadable:
            many = sum(s.unreadable for s in unreadable) > 1
            fix += (", and " if fix else "") + f"remove or replace the {'images' if many else 'image'} that cannot be read"
        where = " + ".join(sources)
        total = sum(s.total for s in scans)
        head = f"{where}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in {_images(total)}: "
        raise UserError(head + "; ".join(problems) + f"; fix: {fix}")
    return next(s.first for s in scans if s.first is not None)
