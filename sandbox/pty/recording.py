"""A terminal's recording: its output, resizes and markers appended to an asciicast v2 file.

The agent records a terminal where its output is read (:class:`sandbox.pty.terminal.Terminal`
calls :meth:`Recorder.output` with each read), so a terminal is recorded once however many
browsers watch it, and also while nobody does. Writing never waits on the disk's flush: output
is joined into events (one per ``JOIN_DELAY`` of output, at most ``EVENT_BYTES`` of bytes each),
kept in memory until ``FLUSH_BYTES`` of lines or ``FLUSH_DELAY`` seconds, then appended with one
``write`` (no fsync). Memory is bounded by those two figures per terminal.

The file stays within ``max_bytes``: when a flush would pass it, the file is read back, its
oldest events are dropped down to ``COMPACT_TO`` of the bound, a marker ``output dropped`` takes
their place (:func:`sandbox.wire.asciicast.trim`), and the result replaces the file (a rename,
so a reader sees the old or the new file, never a torn one).

Files are opened relative to their directory's descriptor and never through a symbolic link
(``O_NOFOLLOW``), and an existing file is used only if it is a regular file with one link (not a
hard link to a file elsewhere, which the agent, root, would otherwise write and chown): the
directory belongs to the web tier's user, who deletes old recordings.
A write that fails (a full disk) stops the recording with one log line; the terminal goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from collections.abc import Callable

from sandbox.wire import asciicast

log = logging.getLogger("sandbox.pty.recording")

JOIN_DELAY = 0.05  # seconds of output joined into one event
EVENT_BYTES = 16 * 1024  # bytes of output in one event at most
FLUSH_BYTES = 64 * 1024  # event lines kept in memory before they are written
FLUSH_DELAY = 1.0  # seconds an event waits in memory at most
COMPACT_TO = 0.75  # a compaction leaves the file at this share of the bound
OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
MODE = 0o640

WindowSize = Callable[[], tuple[int, int]]


class Recorder:
    """Appends one terminal's events to ``name`` in the directory ``directory_fd`` (a descriptor
    this recorder owns from now on and closes in :meth:`close`). An existing file (a recording
    an earlier agent began) is continued, its clock kept; a new one starts with a header."""

    def __init__(
        self,
        directory_fd: int,
        name: str,
        size: WindowSize,
        max_bytes: int,
        title: str,
        owner: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self._dir = directory_fd
        self._size = size
        self._owner = owner
        self._pending = bytearray()  # output bytes not yet an event
        self._pending_at = 0.0
        self._text = asciicast.OutputText()
        self._lines = bytearray()  # event lines not yet written
        self._timer: asyncio.TimerHandle | None = None
        self.broken = False
        self.fd = -1
        self.file_size = 0
        self.width, self.height = size()
        try:
            self.started = self._open(title)
        except OSError as exc:
            self._fail(exc)
            self.started = time.time()

    # -- the file ---------------------------------------------------------------------------
    def _open(self, title: str) -> float:
        """Open (or create) the file; the time its recording started."""
        self.fd = os.open(self.name, OPEN_FLAGS | os.O_CREAT, MODE, dir_fd=self._dir)
        status = os.fstat(self.fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:  # a FIFO, or a hard link to another file
            raise OSError(f"{self.name} is not a recording of its own (a regular file with one link); left alone")
        if self._owner is not None:
            os.fchown(self.fd, *self._owner)
        self.file_size = os.fstat(self.fd).st_size
        if self.file_size:
            started = _started(os.pread(self.fd, 4096, 0))
            if started is not None:
                return started
            os.ftruncate(self.fd, 0)  # not a recording of ours: begin again
        now = float(int(time.time()))  # the header's precision, so a continued recording keeps its clock
        self._append(asciicast.header(self.width, self.height, now, title))
        return now

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.file_size += len(data)

    def _compact(self, new: bytes) -> None:
        """Write the file again with ``new`` lines after its own, its oldest events dropped."""
        content = asciicast.trim(os.pread(self.fd, self.file_size, 0) + new, int(self.max_bytes * COMPACT_TO))
        temporary = f".{self.name}.new"
        try:
            os.unlink(temporary, dir_fd=self._dir)
        except FileNotFoundError:
            pass
        fd = os.open(temporary, OPEN_FLAGS | os.O_CREAT | os.O_EXCL, MODE, dir_fd=self._dir)
        try:
            if self._owner is not None:
                os.fchown(fd, *self._owner)
            old, self.fd, self.file_size = self.fd, fd, 0
            os.close(old)
            self._append(content)
            os.rename(temporary, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except OSError:
            os.unlink(temporary, dir_fd=self._dir)
            raise

    def _fail(self, exc: OSError) -> None:
        if not self.broken:
            log.warning("recording %s stopped: %s", self.name, exc)
        self.broken = True
        self._pending.clear()
        self._lines.clear()

    # -- events -----------------------------------------------------------------------------
    def _now(self) -> float:
        return time.time() - self.started

    def output(self, data: bytes) -> None:
        """Record output read from the terminal."""
        if self.broken or not data:
            return
        now = self._now()
        if self._pending and (now - self._pending_at > JOIN_DELAY or len(self._pending) >= EVENT_BYTES):
            self._emit_output()
        width, height = self._size()
        if (width, height) != (self.width, self.height):  # resized since the last read: the output so far
            self._emit_output()  # had the old size
            self.width, self.height = width, height
            self._add(asciicast.event(now, "r", f"{width}x{height}"))
        if not self._pending:
            self._pending_at = now
        self._pending += data
        self._schedule()

    def marker(self, label: str) -> None:
        """Record a marker (a lab step opened or checked) after the output so far."""
        if self.broken:
            return
        self._emit_output()
        self._add(asciicast.event(self._now(), "m", label))
        self._schedule()

    def _emit_output(self) -> None:
        if not self._pending:
            return
        text = self._text.decode(bytes(self._pending))
        self._pending.clear()
        if not text:
            return  # only the start of a character: it goes with the next output
        self._add(asciicast.event(self._pending_at, "o", text))

    def _add(self, line: bytes) -> None:
        self._lines += line
        if len(self._lines) >= FLUSH_BYTES:
            self.flush()

    def _schedule(self) -> None:
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no event loop (a unit test): the caller flushes
            self._timer = loop.call_later(FLUSH_DELAY, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write what is kept in memory (compacting the file first if it would pass the bound)."""
        self._emit_output()
        if self.broken or not self._lines:
            return
        lines = bytes(self._lines)
        self._lines.clear()
        try:
            if self.file_size + len(lines) > self.max_bytes:
                self._compact(lines)
            else:
                self._append(lines)
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        """Write what is left and close the file and the directory. Safe to repeat."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        for fd in (self.fd, self._dir):
            if fd >= 0:
                os.close(fd)
        self.fd = self._dir = -1
        self.broken = True


def _started(head: bytes) -> float | None:
    """The start time in a recording's first line, or None if it is not an asciicast v2 header."""
    line = head.partition(b"\n")[0]
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or parsed.get("version") != 2:
        return None
    timestamp = parsed.get("timestamp")
    return float(timestamp) if isinstance(timestamp, (int, float)) else None
