"""Real PTY pairs for unit tests: a raw slave (bytes pass unchanged), read without blocking."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import tty

from tests.waiting import eventually_async


def raw_pty() -> tuple[int, int]:
    """A PTY pair (master, slave) whose slave passes bytes unchanged and is read without blocking."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(slave, False)
    return master, slave


def read_available(fd: int) -> bytes:
    """Everything ``fd`` has to read now."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def read_exactly(fd: int, size: int, timeout: float = 1.0) -> bytes:
    """Read the slave until ``size`` bytes came (the kernel hands input to it asynchronously),
    letting the event loop run meanwhile (e.g. to flush pending input)."""
    got = bytearray()

    def arrived() -> bytes:
        got.extend(read_available(fd))
        return bytes(got)

    return await eventually_async(arrived, f"{size} bytes at the slave", timeout, 0.001, until=lambda b: len(b) >= size)


def window_size(fd: int) -> tuple[int, int]:
    """(cols, rows) as the slave sees them."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    return cols, rows
