"""The client's end of a terminal stream (an ``attach`` connection to the agent).

Frames are parsed as bytes arrive (:class:`FrameReceiver`, an asyncio protocol) rather than
awaited one by one: an output frame can then be handed on synchronously to an ``on_output``
sink (the web tier's websocket), without waking the task that reads the stream, when nothing
is ahead of it. That is one turn of the event loop less on every keystroke's echo.

Order is kept: a frame goes to the sink only while no frame is queued and the reader is
parked in :meth:`TerminalStream.read` with nothing in hand; otherwise it is queued and read in
order. Backpressure is kept too: while more than ``QUEUE_LIMIT`` bytes are queued (the reader
waits for a slow browser) the socket is not read, so the agent stops reading the PTY.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from typing import cast

from sandbox import protocol
from sandbox.protocol import Kind
from sandbox.ptyinput import PtyInput

SEND_NOW_LIMIT = 64 * 1024  # bytes waiting in the socket buffer above which send_now declines
QUEUE_LIMIT = 2 * protocol.MAX_PAYLOAD  # bytes of received frames above which the socket is not read
TYPED_FRAME = protocol.encode(Kind.TYPED)

Frame = tuple[Kind, bytes]


class FrameReceiver(asyncio.Protocol):
    """Parses the agent's frames; queues them for :meth:`next` or hands output to ``on_output``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_output: Callable[[bytes], bool] | None = None  # takes an output payload now, or declines
        self.frames: collections.deque[Frame | None] = collections.deque()  # None: the end of the stream
        self._buffer = bytearray()
        self._queued = 0
        self._paused_reading = False
        self._waiter: asyncio.Future[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= protocol.HEADER.size:
            kind_value, length = protocol.HEADER.unpack_from(buffer)
            if length > protocol.MAX_PAYLOAD or kind_value not in Kind._value2member_map_:
                self._end()  # garbage from the agent: the stream is over
                if self.transport is not None:
                    self.transport.close()
                return
            end = protocol.HEADER.size + length
            if len(buffer) < end:
                break
            payload = bytes(buffer[protocol.HEADER.size:end])
            del buffer[:end]
            self._frame(Kind(kind_value), payload)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        self._can_write.set()  # writers find the transport closing and stop

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- frames -----------------------------------------------------------------------------
    def _frame(self, kind: Kind, payload: bytes) -> None:
        if (kind == Kind.DATA and not self.frames and self._waiter is not None and self.on_output is not None
                and self.on_output(payload)):
            return
        self.frames.append((kind, payload))
        self._queued += len(payload)
        if self._queued > QUEUE_LIMIT and not self._paused_reading and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        self._wake()

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
        if self._paused_reading and self._queued <= QUEUE_LIMIT // 2 and self.transport is not None:
            self.transport.resume_reading()
            self._paused_reading = False
        return frame

    async def drain(self) -> None:
        await self._can_write.wait()


class TerminalStream:
    """An attached terminal: read output and events, send input, resize, pause, resume.

    With ``pty_fd`` (a duplicate of the PTY master the agent handed over) input and window sizes
    go straight to the PTY (:mod:`sandbox.ptyinput`); the stream owns the fd.
    """

    def __init__(self, transport: asyncio.Transport, receiver: FrameReceiver, pty_fd: int | None = None) -> None:
        self.transport = transport
        self.receiver = receiver
        self.pty = PtyInput(pty_fd, self._typed) if pty_fd is not None else None

    def on_output(self, sink: Callable[[bytes], bool] | None) -> None:
        """Hand output payloads to ``sink`` as they arrive, when nothing is ahead of them; a
        payload it declines (returns False) is queued for :meth:`read` instead."""
        self.receiver.on_output = sink

    async def read(self) -> Frame | None:
        """The next OUTPUT or EVENT frame, or None when the agent closed the stream."""
        frame = await self.receiver.next()
        if self.pty is not None and (frame is None or _is_exit(frame)):
            self.pty.close()  # input to a terminal that is over is dropped, as the agent would
        return frame

    async def send(self, kind: Kind, payload: bytes = b"") -> None:
        """Send one frame (DATA, RESIZE, PAUSE or RESUME), waiting if the agent (or the PTY) is slow to read."""
        if self.pty is not None and kind == Kind.DATA:
            self.pty.write(payload)
            await self.pty.drain()
            return
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

    def _typed(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(TYPED_FRAME)

    async def close(self) -> None:
        if self.pty is not None:
            self.pty.close()
        self.receiver.on_output = None
        self.transport.close()


def _is_exit(frame: Frame) -> bool:
    kind, payload = frame
    if kind != Kind.EVENT or b'"exit"' not in payload:
        return False
    try:
        return protocol.decode_json(payload).get("type") == "exit"
    except protocol.ProtocolError:
        return False
