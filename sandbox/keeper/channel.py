"""What both ends of the keeper's socket agree on: the bounds of a message and of its fds, the
timeout of a call, and closing received fds. Imports only the standard library.

The requests themselves are described in :mod:`sandbox.keeper.service`.
"""

from __future__ import annotations

import os

MAX_FDS = 4  # a terminal has two: the PTY master and the replay memfd
MAX_MESSAGE = 4096
TIMEOUT = 2.0


def close_all(fds: list[int]) -> None:
    """Close every fd of ``fds``, ignoring those already closed."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
