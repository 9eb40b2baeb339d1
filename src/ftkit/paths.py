"""Telling local paths from hub ids: a missing local path must be reported, never looked up on the hub."""

from __future__ import annotations

import os
import re

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def is_local(path: str) -> bool:
    """Local unless it can only be a hub id: `name` or `owner/name`, with nothing of that name on disk."""
    if os.path.exists(os.path.expanduser(path)):
        return True
    return path.startswith((".", "/", "~")) or "\\" in path or not _HUB_ID.match(path)
