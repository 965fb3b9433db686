"""The web tier's client for the sandbox agent (see :mod:`sandbox.wire.protocol`).

``AgentClient.request`` is one request and one reply on a fresh connection; ``attach``
returns a :class:`TerminalStream`. ``call`` is the synchronous form for Celery tasks.
Every wait is bounded; an agent that is down gives :class:`AgentUnavailable`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError, Kind
from sandbox.wire.stream import FrameReceiver, TerminalStream

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 60.0


class AgentUnavailable(AgentError):
    """The agent's socket does not answer."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            "agent_unavailable", f"the sandbox agent at {path} is not reachable ({reason}); is it running?"
        )


class AgentClient:
    """Talks to the agent listening on ``socket_path``."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket_path), limit=2 * protocol.MAX_PAYLOAD), CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError) as exc:
            raise AgentUnavailable(self.socket_path, getattr(exc, "strerror", None) or "timeout") from None

    async def _exchange(
        self, request: dict[str, Any]
    ) -> tuple[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self._open()
        try:
            writer.write(protocol.encode_json(Kind.REQUEST, request))
            await writer.drain()
            frame = await asyncio.wait_for(protocol.read_frame(reader), REPLY_TIMEOUT + request.get("wait", 0))
        except (TimeoutError, OSError, protocol.ProtocolError) as exc:
            writer.close()
            raise AgentUnavailable(self.socket_path, str(exc) or "no reply") from None
        except BaseException:  # cancelled: do not leave the connection open
            writer.close()
            raise
        if frame is None or frame[0] != Kind.REPLY:
            writer.close()
            raise AgentUnavailable(self.socket_path, "closed without a reply")
        reply = protocol.decode_json(frame[1])
        try:
            _check(reply)
        except AgentError:
            writer.close()
            raise
        return reply, reader, writer

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; returns the reply or raises AgentError with the agent's words."""
        reply, _reader, writer = await self._exchange({"op": op, **fields})
        writer.close()
        return reply

    async def attach(self, sandbox_id: str, wait: float = 0, terminal: int = 0, pty: bool = False) -> TerminalStream:
        """Attach to a sandbox's terminal (0, the first shell, or a tab); the stream starts with
        the replayed screen.

        ``wait`` seconds: if the sandbox is still being created, the agent answers once it exists.
        ``pty``: ask for a duplicate of the PTY master, so that input and window sizes go straight
        to it (:mod:`sandbox.wire.ptyinput`); an agent that sends none gives an ordinary stream.
        """
        request = {"op": "attach", "id": sandbox_id, "wait": wait, "terminal": terminal}
        if pty:
            request["pty"] = True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        fds: list[int] = []
        loop = asyncio.get_running_loop()
        try:
            try:
                await asyncio.wait_for(loop.sock_connect(sock, str(self.socket_path)), CONNECT_TIMEOUT)
                await loop.sock_sendall(sock, protocol.encode_json(Kind.REQUEST, request))
                # Read the reply frame exactly (with the fds that come with it): what follows is the stream's.
                header = await asyncio.wait_for(_receive(sock, protocol.HEADER.size, fds), REPLY_TIMEOUT + wait)
                kind, length = protocol.HEADER.unpack(header)
                if kind != Kind.REPLY or length > protocol.MAX_PAYLOAD:
                    raise protocol.ProtocolError("the agent sent no reply to attach")
                reply = protocol.decode_json(await asyncio.wait_for(_receive(sock, length, fds), REPLY_TIMEOUT))
            except (TimeoutError, OSError, protocol.ProtocolError) as exc:
                raise AgentUnavailable(
                    self.socket_path, getattr(exc, "strerror", None) or str(exc) or "no reply"
                ) from None
            _check(reply)
            transport, receiver = await loop.create_unix_connection(lambda: FrameReceiver(held=True), sock=sock)
        except BaseException:  # refused, failed or cancelled: leave nothing open
            sock.close()
            for fd in fds:
                os.close(fd)
            raise
        if len(fds) == 2:
            stream = TerminalStream(transport, receiver, pty_fd=fds[0], replay_fd=fds[1])
        else:  # an agent that handed over nothing (or something unexpected): an ordinary stream
            for fd in fds:
                os.close(fd)
            stream = TerminalStream(transport, receiver)
        receiver.release()  # now that the stream sees the events meant for it (``lend``)
        return stream

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Synchronous :meth:`request`, for code that has no event loop (Celery tasks)."""
        return asyncio.run(self.request(op, **fields))


def _check(reply: dict[str, Any]) -> None:
    """Raise the agent's refusal as AgentError."""
    if not reply.get("ok"):
        raise AgentError(str(reply.get("error")), str(reply.get("message")))


async def _receive(sock: socket.socket, size: int, fds: list[int]) -> bytes:
    """Exactly ``size`` bytes from a non-blocking ``sock``, adding the fds that come with them to ``fds``."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        try:
            chunk, received, _flags, _addr = socket.recv_fds(sock, size - len(data), 2, socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            await _readable(loop, sock.fileno())
            continue
        fds.extend(received)
        if not chunk:
            raise ConnectionResetError("the agent closed the connection")
        data += chunk
    return bytes(data)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
