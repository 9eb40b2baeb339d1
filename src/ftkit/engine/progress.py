"""Progress for long steps (evaluation, ...): a tqdm bar on a terminal, else a line every `every_s` seconds
with the count, elapsed time and an ETA — a log file or CI output is never silent for minutes."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta_text(done: int, total: Optional[int], elapsed: float) -> str:
    if not total or not done:
        return f"{clock(elapsed)} elapsed"
    return f"{clock(elapsed)} elapsed, ETA {clock(elapsed * (total - done) / done)}"


class Progress:
    def __init__(self, total: Optional[int], desc: str, log: Optional[Callable[[str], None]], every_s: float = 15.0):
        self.total, self.desc, self.log, self.every_s = total, desc, log, every_s
        self.done, self.start = 0, time.perf_counter()
        self.last = self.start
        self.bar = None
        if log is not None and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.log is not None and now - self.last >= self.every_s:
            self.last = now
            of = f"/{self.total:,}" if self.total else ""
            self.log(f"{self.desc}: {self.done:,}{of} ({eta_text(self.done, self.total, now - self.start)})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
