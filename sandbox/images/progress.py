"""A one-line progress bar for long image work, on a terminal; plain lines elsewhere (logs, tests)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
LOG_EVERY = 5.0  # seconds between lines when the output is not a terminal


class Progress:
    """``update(done, total, what)`` redraws the bar; ``note(text)`` prints a line above it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_line = 0.0
        self._drawn = False

    def update(self, done: float, total: float, what: str) -> None:
        """Show ``done`` of ``total`` and what is being done (on a terminal at once, elsewhere every few seconds)."""
        fraction = min(1.0, max(0.0, done / total)) if total > 0 else 0.0
        filled = int(fraction * WIDTH)
        bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {fraction * 100:3.0f}% {what}"
        if self.tty:
            self.stream.write("\r\033[K" + bar[:200])
            self._drawn = True
        elif time.monotonic() - self._last_line >= LOG_EVERY or fraction >= 1.0:
            self.stream.write(bar + "\n")
            self._last_line = time.monotonic()
        self.stream.flush()

    def note(self, text: str) -> None:
        """Print ``text`` as a line of its own, above the bar."""
        self.stream.write(("\r\033[K" if self._drawn else "") + text + "\n")
        self._drawn = False
        self.stream.flush()

    def done(self) -> None:
        """End the bar's line, so what is printed next starts a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()
