"""One terminal of a sandbox: the PTY master, a bounded replay buffer, and its viewers.

The agent reads the PTY only while every viewer can take more: a viewer that asked to pause,
or whose socket has more than ``HIGH_WATER`` bytes unsent, stops the reading, so a process
flooding its terminal blocks in the kernel instead of growing any buffer here.

Output is joined into frames by :class:`sandbox.wire.batch.OutputBatcher` (at once for an echo,
batched for a flood).

A viewer that holds duplicates of the PTY master and of the replay memfd (an ``attach`` with
``"pty": true``) and is the only viewer is *lent* the reading (``lend`` event): it reads
the PTY and appends to the replay itself, so the echo of a keystroke crosses no process but
the shell and the web tier. Only one process ever reads the PTY: before another viewer
attaches, the agent asks for it back (``give_back`` event, answered by GIVEN; see
:meth:`Terminal.take_back`), so output is neither lost nor duplicated, and stays in order.

A recorded terminal (:meth:`Terminal.record`, a workshop's) is never lent: the agent reads all
its output, and its :class:`sandbox.pty.recording.Recorder` writes it down once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Callable
from typing import Protocol

from sandbox.pty.recording import Recorder
from sandbox.wire import fdwait
from sandbox.wire.batch import OutputBatcher
from sandbox.wire.ptyio import clamp_size, read_output
from sandbox.wire.replay import ReplayBuffer

log = logging.getLogger("sandbox.pty.terminal")

GIVE_BACK_TIMEOUT = 2.0  # seconds a lent viewer has to stop reading before it is hung up on
HIGH_WATER = 256 * 1024


class Viewer(Protocol):
    """Something that shows a terminal: the agent's side of one attached connection."""

    paused: bool

    def send_output(self, data: bytes) -> None: ...
    def send_event(self, event: dict[str, object]) -> None: ...
    def hang_up(self) -> None: ...
    def backlog(self) -> int: ...
    async def drain(self) -> None: ...


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
        self._batcher = OutputBatcher(self._send)
        self.lent_to: Viewer | None = None  # the viewer reading the PTY itself, if any
        self._borrowers: set[Viewer] = set()  # viewers that can be lent the reading
        self._given: asyncio.Event | None = None  # set when the lent viewer gives the reading back
        self.recorder: Recorder | None = None  # writes the output down (see record)
        self._taking_back: asyncio.Task[None] | None = None  # the reading, for a recording
        os.set_blocking(fd, False)
        self._start_reading()

    # -- output ---------------------------------------------------------------------------
    def _start_reading(self) -> None:
        if not self._reading and not self.exited and self.lent_to is None:
            self._loop.add_reader(self.fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.fd)
            self._reading = False

    def _on_readable(self) -> None:
        data = read_output(self.fd)
        if data is None:
            return
        if not data:
            self._exit("shell_exited")
            return
        self.replay.append(data)
        if self.recorder is not None:
            self.recorder.output(data)
        self._batcher.add(data)

    def _send(self, data: bytes) -> None:
        """Send a frame of output to every viewer."""
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
        self._batcher.flush()  # the last output before the exit event
        if self.recorder is not None:
            self.recorder.flush()
        self.exited = True
        self.exit_reason = reason
        for viewer in list(self.viewers):
            viewer.send_event({"type": "exit", "reason": reason})
        if self._on_exit:
            self._on_exit()
        self._returned()

    # -- viewers ----------------------------------------------------------------------------
    def attach(self, viewer: Viewer, can_borrow: bool = False) -> None:
        """Add a viewer and send it the replay buffer (the recent screen). ``can_borrow``: it
        holds duplicates of the PTY master and the replay memfd, and is lent the reading
        whenever it is the only viewer (see :meth:`take_back` before attaching another)."""
        self._batcher.flush()  # the replay holds it: the others get it now, the new viewer only once
        if len(self.replay):
            viewer.send_output(self.replay.contents())
        self.viewers.append(viewer)
        if can_borrow:
            self._borrowers.add(viewer)
        if self.exited:
            viewer.send_event({"type": "exit", "reason": self.exit_reason})
        self._apply_backpressure()
        self._lend_if_alone()

    def detach(self, viewer: Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        self._borrowers.discard(viewer)
        if self.lent_to is viewer:  # it is gone, and reads no more
            self._returned()
        self._lend_if_alone()  # e.g. the old page of a reload left: the new one reads again

    # -- recording ------------------------------------------------------------------------------
    def record(self, recorder: Recorder) -> None:
        """Write this terminal's output down with ``recorder`` from now on (which this terminal
        closes with itself). A lent viewer is asked to give the reading back, since only the
        agent's reads are recorded."""
        if self.recorder is not None:
            self.recorder.close()
        self.recorder = recorder
        if self.lent_to is not None:
            self._taking_back = asyncio.ensure_future(self.take_back())

    def window_size(self) -> tuple[int, int]:
        """The terminal's columns and rows as the kernel has them (80x24 once it is closed)."""
        if self.fd < 0:
            return 80, 24
        try:
            rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(self.fd, termios.TIOCGWINSZ, bytes(8)))
        except OSError:
            return 80, 24
        return cols or 80, rows or 24

    # -- lending the reading ------------------------------------------------------------------
    def _lend_if_alone(self) -> None:
        """Let the only viewer, if it can borrow, read the PTY itself (it gets a ``lend`` event
        after everything the agent read). Only on attach and detach: a viewer that gave the
        reading back on its own (it read the end of the PTY) is not lent it again."""
        if (
            self.exited
            or self.lent_to is not None
            or self._given is not None
            or len(self.viewers) != 1
            or self.viewers[0] not in self._borrowers
            or self.recorder is not None
        ):
            return
        viewer = self.viewers[0]
        self._batcher.flush()
        self._stop_reading()
        self.lent_to = viewer
        viewer.send_event({"type": "lend"})

    async def take_back(self) -> None:
        """Read the PTY here again: ask the lent viewer to stop (``give_back``) and wait for its
        GIVEN; one that does not answer within ``GIVE_BACK_TIMEOUT`` is hung up on. Returns
        when no viewer is lent it, so a caller that attaches without awaiting anything more
        attaches while the agent reads (another attach may have been lent it meanwhile)."""
        while (viewer := self.lent_to) is not None:
            if self._given is None:
                self._given = asyncio.Event()
                viewer.send_event({"type": "give_back"})
            try:
                await asyncio.wait_for(self._given.wait(), GIVE_BACK_TIMEOUT)
            except TimeoutError:
                if self.lent_to is viewer:
                    log.warning("a viewer lent terminal fd %d did not give it back; hanging up on it", self.fd)
                    viewer.hang_up()
                    self.detach(viewer)  # at once: it is no viewer any more, whatever its socket does

    def given(self, viewer: Viewer) -> None:
        """``viewer`` stopped reading the PTY (asked to, or because it read the end)."""
        if self.lent_to is viewer:
            self._returned()

    def _returned(self) -> None:
        self.lent_to = None
        if self._given is not None:
            self._given.set()
            self._given = None
        self._start_reading()
        self._apply_backpressure()

    def viewer_changed(self) -> None:
        """A viewer paused or resumed."""
        self._apply_backpressure()

    # -- input ------------------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Write input to the PTY, in order, waiting while the kernel buffer is full."""
        async with self._write_lock:
            self._batcher.input_came()  # its echo is awaited: send it without batching
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
        self._batcher.flush()
        self._batcher.input_came()

    async def _writable(self) -> None:
        """Wait until the PTY takes input again, or a second at most (the shell may never read)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fdwait.ready(self.fd, write=True), 1.0)

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
        if self.recorder is not None:
            self.recorder.close()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
            self.replay.close()
