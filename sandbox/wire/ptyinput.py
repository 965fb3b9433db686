"""Input written straight to a terminal's PTY master, by a client the agent handed a duplicate to.

Without it every keystroke wakes one more process: the web tier hands it to the agent, which
writes it to the PTY. With it the web tier writes the PTY itself (see ``attach`` with ``"pty":
true`` in :mod:`sandbox.wire.protocol`); who reads the output is another matter (the agent, or the
web tier while the agent lends it the reading: :mod:`sandbox.wire.stream`).

Order is kept: what the PTY does not take at once (its input queue is full because the program
in the sandbox does not read) waits in ``pending``, and later input goes behind it. ``pending``
is bounded by the caller, which waits on :meth:`PtyInput.drain` as it would on a socket.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Callable

from sandbox.wire.ptyio import clamp_size

log = logging.getLogger("sandbox.wire.ptyinput")

HIGH_WATER = 64 * 1024  # bytes of pending input above which writers wait (drain)


class PtyInput:
    """Owns one duplicate of a PTY master from construction until :meth:`close`."""

    def __init__(self, fd: int, on_written: Callable[[], None]) -> None:
        """``on_written`` is called after each write that reached the PTY (the agent is told)."""
        self.fd = fd
        self.pending = bytearray()
        self.closed = False
        self._on_written = on_written
        self._loop = asyncio.get_running_loop()
        self._waiting_writable = False
        self._drained = asyncio.Event()
        self._drained.set()
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        """Write ``data`` after any pending input; what the PTY does not take now waits for it."""
        if self.closed or not data:
            return
        if not self.pending:
            written = self._write(data)
            if written is None or written == len(data):
                return
            data = data[written:]
            self._watch_writable(True)
        self.pending += data
        if len(self.pending) > HIGH_WATER:
            self._drained.clear()

    def backlog(self) -> int:
        """Bytes of input the PTY has not taken yet."""
        return len(self.pending)

    async def drain(self) -> None:
        """Wait until the pending input is at most ``HIGH_WATER`` (or the input is closed)."""
        await self._drained.wait()

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size (clamped as the agent would); the kernel signals SIGWINCH."""
        if not self.closed:
            cols, rows = clamp_size(cols, rows)
            try:
                fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            except OSError as exc:
                log.info("terminal refused a window size: %s", exc)

    def close(self) -> None:
        """Drop pending input and close the duplicate; safe to repeat."""
        if self.closed:
            return
        self.closed = True
        self.pending.clear()
        self._watch_writable(False)
        self._drained.set()
        os.close(self.fd)

    def _write(self, data: bytes | bytearray) -> int | None:
        """Write what the PTY takes now; how much that was, or None if it failed (then closed)."""
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:  # the terminal is gone; the agent's stream tells the client so
            log.info("terminal refused input: %s", exc)
            self.close()
            return None
        if written:
            self._on_written()
        return written

    def _flush(self) -> None:
        written = self._write(self.pending)
        if written is None:
            return
        del self.pending[:written]
        self._watch_writable(bool(self.pending))
        if len(self.pending) <= HIGH_WATER:
            self._drained.set()

    def _watch_writable(self, on: bool) -> None:
        if on and not self._waiting_writable:
            self._loop.add_writer(self.fd, self._flush)
        elif not on and self._waiting_writable:
            self._loop.remove_writer(self.fd)
        self._waiting_writable = on
