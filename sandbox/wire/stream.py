"""The client's end of a terminal stream (an ``attach`` connection to the agent).

Frames are parsed as bytes arrive (:class:`FrameReceiver`, an asyncio protocol) rather than
awaited one by one: an output frame can then be handed on synchronously to an ``on_output``
sink (the web tier's websocket), without waking the task that reads the stream, when nothing
is ahead of it. That is one turn of the event loop less on every keystroke's echo.

Order is kept: a frame goes to the sink only while no frame is queued and the reader is
parked in :meth:`TerminalStream.read` with nothing in hand; otherwise it is queued and read in
order. Backpressure is kept too: while more than ``QUEUE_LIMIT`` bytes are queued (the reader
waits for a slow browser) the socket is not read, so the agent stops reading the PTY.

While the agent lends the stream the reading of the PTY (see :mod:`sandbox.pty.terminal`), the
stream reads it itself, appends to the replay, batches like the agent (:mod:`sandbox.wire.batch`)
and feeds the output into the same queue and sink, so order and backpressure are the same:
the PTY is not read while the queue is full or the browser asked to pause.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from typing import cast

from sandbox.wire import protocol
from sandbox.wire.batch import OutputBatcher
from sandbox.wire.protocol import Kind
from sandbox.wire.ptyinput import PtyInput
from sandbox.wire.ptyio import read_output
from sandbox.wire.replay import ReplayBuffer

SEND_NOW_LIMIT = 64 * 1024  # bytes waiting in the socket buffer above which send_now declines
QUEUE_LIMIT = 2 * protocol.MAX_PAYLOAD  # bytes of received frames above which the socket is not read
TYPED_FRAME = protocol.encode(Kind.TYPED)
GIVEN_FRAME = protocol.encode(Kind.GIVEN)

Frame = tuple[Kind, bytes]


class FrameReceiver(asyncio.Protocol):
    """Parses the agent's frames; queues them for :meth:`next` or hands output to ``on_output``."""

    def __init__(self, held: bool = False) -> None:
        """``held``: keep what arrives unparsed until :meth:`release` (so that whoever sets
        ``control`` sees every event, even those that come before the connection is returned)."""
        self.held = held
        self.transport: asyncio.Transport | None = None
        self.on_output: Callable[[bytes], bool] | None = None  # takes an output payload now, or declines
        self.control: Callable[[bytes], bool] | None = None  # sees each event first; True: consumed
        self.on_reading_change: Callable[[], None] | None = None  # reading paused or resumed
        self.frames: collections.deque[Frame | None] = collections.deque()  # None: the end of the stream
        self._buffer = bytearray()
        self._queued = 0
        self._paused_reading = False  # too much is queued: nothing more is read
        # While a lent PTY is read, the socket carries only the agent's events (give_back must get
        # through however full the queue is), so then only the PTY stops being read.
        self._socket_backpressure = True
        self._socket_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.held:
            self._parse()

    def release(self) -> None:
        """Parse what was held, and from now on what arrives."""
        self.held = False
        self._parse()
        if self._ended:
            self._end()

    def _parse(self) -> None:
        buffer = self._buffer
        while len(buffer) >= protocol.HEADER.size and not self.closed:
            kind_value, length = protocol.HEADER.unpack_from(buffer)
            if length > protocol.MAX_PAYLOAD or kind_value not in Kind._value2member_map_:
                self._end()  # garbage from the agent: the stream is over
                if self.transport is not None:
                    self.transport.close()
                return
            end = protocol.HEADER.size + length
            if len(buffer) < end:
                break
            payload = bytes(buffer[protocol.HEADER.size : end])
            del buffer[:end]
            self.deliver(Kind(kind_value), payload)

    def eof_received(self) -> bool:
        self._at_end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._at_end()
        self._can_write.set()  # writers find the transport closing and stop

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- frames -----------------------------------------------------------------------------
    @property
    def reading_paused(self) -> bool:
        """Whether too much is queued for more to be read (from the socket or a lent PTY)."""
        return self._paused_reading

    def deliver(self, kind: Kind, payload: bytes) -> None:
        """A frame from the agent, or output read from a lent PTY: to the sink, or queued."""
        if kind == Kind.EVENT and self.control is not None and self.control(payload):
            return
        if (
            kind == Kind.DATA
            and not self.frames
            and self._waiter is not None
            and self.on_output is not None
            and self.on_output(payload)
        ):
            return
        self.frames.append((kind, payload))
        self._queued += len(payload)
        if self._queued > QUEUE_LIMIT and not self._paused_reading:
            self._paused_reading = True
            self._pause_socket(self._socket_backpressure)
            self._reading_changed()
        self._wake()

    def follow_socket(self, backpressure: bool) -> None:
        """Whether a full queue stops reading the socket (not while a lent PTY is read)."""
        self._socket_backpressure = backpressure
        self._pause_socket(backpressure and self._paused_reading)

    def _pause_socket(self, pause: bool) -> None:
        if pause != self._socket_paused and self.transport is not None and not self.transport.is_closing():
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()
            self._socket_paused = pause

    def _reading_changed(self) -> None:
        if self.on_reading_change is not None:
            self.on_reading_change()

    def _at_end(self) -> None:
        """The agent closed the stream: what is held is still parsed first (at release)."""
        self._ended = True
        if not self.held:
            self._end()

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self.frames.append(None)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Frame | None:
        """The next queued frame, waiting for one; None once the stream ended."""
        while not self.frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self.frames[0]
        if frame is None:
            return None
        self.frames.popleft()
        self._queued -= len(frame[1])
        if self._paused_reading and self._queued <= QUEUE_LIMIT // 2:
            self._paused_reading = False
            self._pause_socket(False)
            self._reading_changed()
        return frame

    async def drain(self) -> None:
        await self._can_write.wait()


class TerminalStream:
    """An attached terminal: read output and events, send input, resize, pause, resume.

    With ``pty_fd`` and ``replay_fd`` (duplicates of the PTY master and of the replay memfd the
    agent handed over) input and window sizes go straight to the PTY (:mod:`sandbox.wire.ptyinput`),
    and the stream reads the PTY itself while the agent lends it the reading; the stream owns
    both fds.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        receiver: FrameReceiver,
        pty_fd: int | None = None,
        replay_fd: int | None = None,
    ) -> None:
        self.transport = transport
        self.receiver = receiver
        self.pty = PtyInput(pty_fd, self._typed) if pty_fd is not None else None
        self.replay = ReplayBuffer(0, fd=replay_fd) if replay_fd is not None else None
        self.lent = False  # the agent lent us the reading of the PTY
        self.paused = False  # the browser asked to pause
        self._reading = False
        self._batcher = OutputBatcher(self._read_out)
        receiver.control = self._control
        receiver.on_reading_change = self._update_reading

    def on_output(self, sink: Callable[[bytes], bool] | None) -> None:
        """Hand output payloads to ``sink`` as they arrive, when nothing is ahead of them; a
        payload it declines (returns False) is queued for :meth:`read` instead."""
        self.receiver.on_output = sink

    async def read(self) -> Frame | None:
        """The next OUTPUT or EVENT frame, or None when the agent closed the stream."""
        frame = await self.receiver.next()
        if frame is None:
            self._stop_direct()
        return frame

    async def send(self, kind: Kind, payload: bytes = b"") -> None:
        """Send one frame (DATA, RESIZE, PAUSE or RESUME), waiting if the agent (or the PTY) is slow to read."""
        if self.pty is not None and kind == Kind.DATA:
            self.pty.write(payload)
            await self.pty.drain()
            return
        if kind in (Kind.PAUSE, Kind.RESUME):
            self.paused = kind == Kind.PAUSE
            self._update_reading()
        if not self.transport.is_closing():
            self.transport.write(protocol.encode(kind, payload))
            await self.receiver.drain()

    def send_now(self, kind: Kind, payload: bytes = b"") -> bool:
        """Send one frame without waiting, if the connection's buffer is below its limit; whether it was sent."""
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size() >= SEND_NOW_LIMIT:
            return False
        if self.pty is not None and kind == Kind.DATA:
            if self.pty.backlog() >= SEND_NOW_LIMIT:
                return False
            self.pty.write(payload)
            return True
        transport.write(protocol.encode(kind, payload))
        return True

    async def resize(self, cols: int, rows: int) -> None:
        if self.pty is not None:
            self.pty.resize(cols, rows)
            return
        await self.send(Kind.RESIZE, json.dumps({"cols": cols, "rows": rows}).encode())

    async def close(self) -> None:
        self._stop_direct()
        self.receiver.on_output = None
        self.transport.close()

    # -- input written to the PTY -----------------------------------------------------------
    def _typed(self) -> None:
        if self.lent:
            self._batcher.input_came()  # we read the echo: send it at once
        elif not self.transport.is_closing():
            self.transport.write(TYPED_FRAME)  # the agent reads it: tell it to send it at once

    # -- reading a lent PTY -----------------------------------------------------------------
    def _control(self, payload: bytes) -> bool:
        """The agent's ``lend`` and ``give_back`` events are for the stream, not its reader; at
        ``exit`` the stream stops writing (and reading) the PTY before its reader sees it."""
        if b'"lend"' not in payload and b'"give_back"' not in payload and b'"exit"' not in payload:
            return False
        try:
            kind = protocol.decode_json(payload).get("type")
        except protocol.ProtocolError:
            return False
        if kind == "lend":
            if self.pty is None or self.replay is None or self.pty.closed:
                self._give_back()  # cannot read it: the agent reads on
            else:
                self.lent = True
                self.receiver.follow_socket(False)
                self._update_reading()
            return True
        if kind == "give_back":
            self._give_back()
            return True
        if kind == "exit":
            if self.lent:
                self._read_now(until_empty=True)  # the last output before the event
                self._batcher.flush()
            self._stop_direct()  # input to a terminal that is over is dropped, as the agent would
        return False

    def _give_back(self) -> None:
        """Stop reading the PTY, deliver what was read, and tell the agent (GIVEN)."""
        self._batcher.flush()
        self.lent = False
        self._update_reading()
        self.receiver.follow_socket(True)
        if not self.transport.is_closing():
            self.transport.write(GIVEN_FRAME)

    def _update_reading(self) -> None:
        want = self.lent and not self.paused and not self.receiver.reading_paused and not self.receiver.closed
        if want and not self._reading and self.pty is not None:
            asyncio.get_running_loop().add_reader(self.pty.fd, self._read_now)
            self._reading = True
        elif not want and self._reading and self.pty is not None:
            asyncio.get_running_loop().remove_reader(self.pty.fd)
            self._reading = False

    def _read_now(self, until_empty: bool = False) -> None:
        assert self.pty is not None and self.replay is not None
        while self.lent:
            data = read_output(self.pty.fd)
            if data is None:
                return
            if not data:  # the shell is gone: the agent reads the end itself and reports the exit
                self._give_back()
                return
            self.replay.append(data)
            self._batcher.add(data)
            if not until_empty:
                return

    def _read_out(self, data: bytes) -> None:
        self.receiver.deliver(Kind.DATA, data)

    def _stop_direct(self) -> None:
        """Stop reading and writing the PTY and let go of both fds; safe to repeat."""
        self.lent = False
        self._update_reading()
        self._batcher.cancel()
        if self.pty is not None:
            self.pty.close()
        if self.replay is not None:
            self.replay.close()
