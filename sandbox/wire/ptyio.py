"""What both readers of a PTY master share, the agent and a web tier lent the reading: one read of
its output, and the bounds of a window size."""

from __future__ import annotations

import errno
import logging
import os

log = logging.getLogger("sandbox.wire.ptyio")

READ_SIZE = 65536
MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 2, 500


def read_output(fd: int) -> bytes | None:
    """What a PTY master has to read now: None if nothing yet, b"" at its end (every process
    holding the slave is gone; the kernel says EIO)."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno != errno.EIO:
            log.warning("reading terminal fd %d failed: %s", fd, exc)
        return b""


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    """A terminal size forced into sane bounds (0x0 and 100000x100000 included)."""
    return max(MIN_COLS, min(MAX_COLS, cols)), max(MIN_ROWS, min(MAX_ROWS, rows))
