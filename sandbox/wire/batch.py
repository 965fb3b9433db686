"""Terminal output joined into frames: at once for an echo, batched for a flood.

Output goes out at once when input came since the last frame (a keystroke's echo) or the
terminal was quiet, and otherwise at most every ``BATCH_DELAY`` while it keeps coming: the
kernel hands a PTY's output over 4 KiB at a time at most, and every frame wakes the web tier
and becomes a websocket message, so a flood is sent in frames of up to ``FRAME_SIZE`` rather
than thousands of small ones. Used by whoever reads the PTY: the agent, or the web tier while
the agent lends it the reading (see :mod:`sandbox.wire.stream`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

BATCH_DELAY = 0.002  # seconds: the longest output waits to join the next frame
FRAME_SIZE = 65536


class OutputBatcher:
    """Collects output and hands it to ``deliver`` in frames, on the running event loop."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._batch: list[bytes] = []
        self._size = 0
        self._last_sent = 0.0
        self._input_since_sent = False
        self._send_later: asyncio.TimerHandle | None = None

    def add(self, data: bytes) -> None:
        """Output just read: delivered now, or with the next frame within ``BATCH_DELAY``."""
        self._batch.append(data)
        self._size += len(data)
        if self._input_since_sent or self._size >= FRAME_SIZE or self._loop.time() - self._last_sent >= BATCH_DELAY:
            self.flush()
        elif self._send_later is None:
            self._send_later = self._loop.call_at(self._last_sent + BATCH_DELAY, self.flush)

    def input_came(self) -> None:
        """Input was written to the PTY: its echo goes out at once, whatever came just before."""
        self._input_since_sent = True

    def flush(self) -> None:
        """Deliver what was collected, now."""
        self.cancel()
        if not self._batch:
            return
        self._last_sent = self._loop.time()
        self._input_since_sent = False
        data = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch, self._size = [], 0
        self._deliver(data)

    def cancel(self) -> None:
        """Stop the pending timer (what was collected stays until the next flush)."""
        if self._send_later is not None:
            self._send_later.cancel()
            self._send_later = None
