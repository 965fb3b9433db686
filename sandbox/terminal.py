"""One terminal of a sandbox: the PTY master, a bounded replay buffer, and its viewers.

The agent reads the PTY only while every viewer can take more: a viewer that asked to pause,
or whose socket has more than ``HIGH_WATER`` bytes unsent, stops the reading, so a process
flooding its terminal blocks in the kernel instead of growing any buffer here.

Output goes to the viewers at once when input came since the last frame (a keystroke's
echo) or the terminal was quiet, and otherwise at most every ``BATCH_DELAY`` while it keeps
coming: the kernel hands a PTY's output over 4 KiB at a time at most, and every frame wakes
the web tier and becomes a websocket message, so a flood is sent in frames of up to
``READ_SIZE`` rather than thousands of small ones.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Callable
from typing import Protocol

from sandbox.replay import ReplayBuffer

log = logging.getLogger("sandbox.terminal")

READ_SIZE = 65536
BATCH_DELAY = 0.002  # seconds: the longest output waits to join the next frame
HIGH_WATER = 256 * 1024
MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 2, 500


class Viewer(Protocol):
    """Something that shows a terminal: the agent's side of one attached connection."""

    paused: bool

    def send_output(self, data: bytes) -> None: ...
    def send_event(self, event: dict[str, object]) -> None: ...
    def backlog(self) -> int: ...
    async def drain(self) -> None: ...


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    """A terminal size forced into sane bounds (0x0 and 100000x100000 included)."""
    return max(MIN_COLS, min(MAX_COLS, cols)), max(MIN_ROWS, min(MAX_ROWS, rows))


class Terminal:
    """Owns one PTY master fd from the moment it is constructed until :meth:`close`."""

    def __init__(self, fd: int, replay: ReplayBuffer, on_exit: Callable[[], None] | None = None) -> None:
        """Take ownership of ``fd`` and ``replay`` (kept output, possibly from an earlier agent)."""
        self.fd = fd
        self.replay = replay
        self.viewers: list[Viewer] = []
        self.exited = False
        self.exit_reason = ""
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._reading = False
        self._unblock: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._last_sent = 0.0
        self._input_since_sent = False
        self._send_later: asyncio.TimerHandle | None = None
        os.set_blocking(fd, False)
        self._start_reading()

    # -- output ---------------------------------------------------------------------------
    def _start_reading(self) -> None:
        if not self._reading and not self.exited:
            self._loop.add_reader(self.fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.fd)
            self._reading = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                log.warning("reading terminal fd %d failed: %s", self.fd, exc)
            data = b""
        if not data:
            self._exit("shell_exited")
            return
        self.replay.append(data)
        self._batch.append(data)
        self._batch_size += len(data)
        if (self._input_since_sent or self._batch_size >= READ_SIZE
                or self._loop.time() - self._last_sent >= BATCH_DELAY):
            self._send_batch()
        elif self._send_later is None:
            self._send_later = self._loop.call_at(self._last_sent + BATCH_DELAY, self._send_batch)

    def _send_batch(self) -> None:
        """Send the output read since the last frame to every viewer."""
        if self._send_later is not None:
            self._send_later.cancel()
            self._send_later = None
        if not self._batch:
            return
        self._last_sent = self._loop.time()
        self._input_since_sent = False
        data = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch, self._batch_size = [], 0
        for viewer in list(self.viewers):
            viewer.send_output(data)
        self._apply_backpressure()

    def _apply_backpressure(self) -> None:
        blocked = [v for v in self.viewers if v.paused or v.backlog() > HIGH_WATER]
        if blocked and self._unblock is None:
            self._stop_reading()
            self._unblock = asyncio.ensure_future(self._wait_until_free())

    async def _wait_until_free(self) -> None:
        try:
            while True:
                blocked = [v for v in self.viewers if v.paused or v.backlog() > HIGH_WATER]
                if not blocked:
                    break
                waits = [asyncio.ensure_future(v.drain()) for v in blocked if not v.paused]
                if waits:
                    await asyncio.wait(waits, timeout=0.5)
                    for w in waits:
                        w.cancel()
                else:
                    await asyncio.sleep(0.05)
        finally:
            self._unblock = None
            self._start_reading()

    def _exit(self, reason: str) -> None:
        """The terminal is over: ``shell_exited`` (its process ended), ``destroyed`` or ``closed``."""
        self._stop_reading()
        if self.exited:
            return
        self._send_batch()  # the last output before the exit event
        self.exited = True
        self.exit_reason = reason
        for viewer in list(self.viewers):
            viewer.send_event({"type": "exit", "reason": reason})
        if self._on_exit:
            self._on_exit()

    # -- viewers ----------------------------------------------------------------------------
    def attach(self, viewer: Viewer) -> None:
        """Add a viewer and send it the replay buffer (the recent screen)."""
        self._send_batch()  # the replay holds it: the others get it now, the new viewer only once
        if len(self.replay):
            viewer.send_output(self.replay.contents())
        self.viewers.append(viewer)
        if self.exited:
            viewer.send_event({"type": "exit", "reason": self.exit_reason})
        self._apply_backpressure()

    def detach(self, viewer: Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)

    def viewer_changed(self) -> None:
        """A viewer paused or resumed."""
        self._apply_backpressure()

    # -- input ------------------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Write input to the PTY, in order, waiting while the kernel buffer is full."""
        async with self._write_lock:
            self._input_since_sent = True  # its echo is awaited: send it without batching
            view = memoryview(data)
            while view and not self.exited:
                try:
                    written = os.write(self.fd, view)
                    view = view[written:]
                except BlockingIOError:
                    await self._writable()
                except OSError as exc:
                    log.info("terminal fd %d refused input: %s", self.fd, exc)
                    return

    def typed(self) -> None:
        """A client holding a duplicate of the PTY master wrote input to it: send the echo at once
        (with any output read meanwhile) instead of batching it."""
        self._send_batch()
        self._input_since_sent = True

    async def _writable(self) -> None:
        fd = self.fd
        future: asyncio.Future[None] = self._loop.create_future()
        self._loop.add_writer(fd, lambda: future.done() or future.set_result(None))
        try:
            await asyncio.wait_for(future, 1.0)
        except TimeoutError:
            pass
        finally:
            self._loop.remove_writer(fd)

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        """Set the window size (clamped); the kernel signals SIGWINCH to the foreground job."""
        cols, rows = clamp_size(cols, rows)
        if not self.exited and self.fd >= 0:
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        return cols, rows

    def close(self, reason: str = "destroyed") -> None:
        """Stop everything and close the PTY master; viewers get an exit event with ``reason``
        (``destroyed``, or ``closed`` for a tab closed on its own). Safe to repeat: the fd is
        closed exactly once (closing it twice could close an unrelated, reused fd)."""
        self._exit(reason)
        if self._unblock:
            self._unblock.cancel()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
            self.replay.close()
