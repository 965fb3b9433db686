"""The web tier's client for the sandbox agent (see :mod:`sandbox.protocol`).

``AgentClient.request`` is one request and one reply on a fresh connection; ``attach``
returns a :class:`TerminalStream`. ``call`` is the synchronous form for Celery tasks.
Every wait is bounded; an agent that is down gives :class:`AgentUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sandbox import protocol
from sandbox.protocol import AgentError, Kind

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 60.0
SEND_NOW_LIMIT = 64 * 1024  # bytes waiting in the socket buffer above which send_now declines


class AgentUnavailable(AgentError):
    """The agent's socket does not answer."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__("agent_unavailable",
                         f"the sandbox agent at {path} is not reachable ({reason}); is it running?")


class TerminalStream:
    """An attached terminal: read output and events, send input, resize, pause, resume."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> tuple[Kind, bytes] | None:
        """The next OUTPUT or EVENT frame, or None when the agent closed the stream."""
        try:
            return await protocol.read_frame(self.reader)
        except (ConnectionError, protocol.ProtocolError):
            return None

    async def send(self, kind: Kind, payload: bytes = b"") -> None:
        """Send one frame (DATA, RESIZE, PAUSE or RESUME), waiting if the agent is slow to read."""
        self.writer.write(protocol.encode(kind, payload))
        await self.writer.drain()

    def send_now(self, kind: Kind, payload: bytes = b"") -> bool:
        """Send one frame without waiting, if the connection's buffer is below its limit; whether it was sent."""
        transport = self.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() >= SEND_NOW_LIMIT:
            return False
        self.writer.write(protocol.encode(kind, payload))
        return True

    async def resize(self, cols: int, rows: int) -> None:
        await self.send(Kind.RESIZE, json.dumps({"cols": cols, "rows": rows}).encode())

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, RuntimeError):
            pass


class AgentClient:
    """Talks to the agent listening on ``socket_path``."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket_path), limit=2 * protocol.MAX_PAYLOAD),
                CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise AgentUnavailable(self.socket_path, getattr(exc, "strerror", None) or "timeout") from None

    async def _exchange(self, request: dict[str, Any]) -> tuple[dict[str, Any], asyncio.StreamReader,
                                                                 asyncio.StreamWriter]:
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
        if not reply.get("ok"):
            writer.close()
            raise AgentError(str(reply.get("error")), str(reply.get("message")))
        return reply, reader, writer

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; returns the reply or raises AgentError with the agent's words."""
        reply, _reader, writer = await self._exchange({"op": op, **fields})
        writer.close()
        return reply

    async def attach(self, sandbox_id: str, wait: float = 0, terminal: int = 0) -> TerminalStream:
        """Attach to a sandbox's terminal (0, the first shell, or a tab); the stream starts with
        the replayed screen.

        ``wait`` seconds: if the sandbox is still being created, the agent answers once it exists.
        """
        _reply, reader, writer = await self._exchange({"op": "attach", "id": sandbox_id, "wait": wait,
                                                       "terminal": terminal})
        return TerminalStream(reader, writer)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Synchronous :meth:`request`, for code that has no event loop (Celery tasks)."""
        return asyncio.run(self.request(op, **fields))
