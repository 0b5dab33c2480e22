"""A progress bar on stderr for long runs: plain text, redrawn at most ten times a
second of wall time (the simulated clock is unrelated)."""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 30
_EVERY_S = 0.1


class Progress:
    def __init__(self, total: int, out: TextIO, *, label: str = "simulating") -> None:
        self.total = max(total, 1)
        self.done = 0
        self._out = out
        self._label = label
        self._drawn_at = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done % 64 == 0:
            now = time.monotonic()
            if now - self._drawn_at >= _EVERY_S:
                self._drawn_at = now
                self._draw()

    def close(self) -> None:
        self.done = self.total
        self._draw()
        self._out.write("\n")
        self._out.flush()

    def _draw(self) -> None:
        share = min(self.done / self.total, 1.0)
        filled = round(share * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        self._out.write(f"\r{self._label} [{bar}] {share:4.0%}")
        self._out.flush()


class NoProgress:
    def advance(self, n: int = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to show."""
