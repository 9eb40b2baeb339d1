"""Entity chunks of a tag sequence, with conlleval's (and seqeval's default mode's) rules: IOB1, IOB2, BIOES.

Reading and converting tag schemes (data.py) needs it; metrics.py scores with it.
"""

from __future__ import annotations


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or tag == ".":
        return tag, ""
    prefix, _, typ = tag.partition("-")
    return prefix, typ or "_"


def _ends(prev: str, tag: str, prev_type: str, typ: str) -> bool:
    """Does the chunk open at the previous token end before this one?"""
    return (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev not in ("O", ".") and prev_type != typ))


def _starts(prev: str, tag: str, prev_type: str, typ: str) -> bool:
    """Does a chunk start at this token?"""
    return (tag in ("B", "S") or (prev in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != typ))


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) chunks of one sentence."""
    out, prev, prev_type, begin = [], "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        p, typ = _split(tag)
        if _ends(prev, p, prev_type, typ):
            out.append((prev_type, begin, i - 1))
        if _starts(prev, p, prev_type, typ):
            begin = i
        prev, prev_type = p, typ
    return out
