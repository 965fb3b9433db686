"""The web tier's client for the sandbox agent (see :mod:`sandbox.wire.protocol`).

``AgentClient.request`` is one request and one reply on a fresh connection; ``attach``
returns a :class:`TerminalStream`. ``call`` is the synchronous form for Celery tasks.
Every wait is bounded; an agent that is down gives :class:`AgentUnavailable`.

The agent of this host is reached on its unix socket; the agent of another host (a
:class:`RemoteAgent`) over TCP with mutual TLS (:mod:`sandbox.wire.tls`), which carries no file
descriptors: its terminals are streamed through it, never lent, and a file's bytes go on the
connection itself (``inline``, :mod:`sandbox.agent.files`), into and out of the same kinds of
descriptors the callers pass and get on this host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.wire import fdwait, protocol, tls
from sandbox.wire.protocol import AgentError, Kind
from sandbox.wire.stream import FrameReceiver, TerminalStream

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 60.0
# Seconds for a file op's result: the agent's own deadline (sandbox.runtime.files: GET_TIMEOUT, 60 s,
# PUT_TIMEOUT, 120 s, from the moment the bytes may flow) plus the cleaning up after it; a download
# also waits up to sandbox.runtime.files.HOST_WAIT (30 s) for its turn first, which this covers.
FILE_TIMEOUT = 150.0
CHUNK = 1 << 18  # bytes of a file sent or read at a time over TCP


def reply_timeout(request: dict[str, Any]) -> float:
    """Seconds the reply to ``request`` may take: REPLY_TIMEOUT, plus the time the request itself
    gives the agent (an attach's ``wait`` for its sandbox, a run's script ``timeout``; a run may also
    wait up to :data:`sandbox.runtime.labscripts.HOST_WAIT` for its turn, which REPLY_TIMEOUT covers).
    The file ops wait for their turn too (:data:`sandbox.runtime.files.HOST_WAIT`), within
    FILE_TIMEOUT, or, for an upload's first reply (its pipe, or the refusal that comes instead),
    within REPLY_TIMEOUT."""
    return REPLY_TIMEOUT + float(request.get("wait", 0)) + float(request.get("timeout", 0))


@dataclass(frozen=True)
class RemoteAgent:
    """The agent of another host: where it listens (PLAYGROUND_AGENT_LISTEN there) and the site's
    side of the mutual TLS (:func:`sandbox.wire.tls.client_context`)."""

    address: tls.Address
    context: ssl.SSLContext

    def __str__(self) -> str:
        return f"tls://{self.address}"


class AgentUnavailable(AgentError):
    """The agent's socket does not answer."""

    def __init__(self, path: Path | RemoteAgent | str, reason: str) -> None:
        super().__init__(
            "agent_unavailable", f"the sandbox agent at {path} is not reachable ({reason}); is it running?"
        )


class AgentClient:
    """Talks to the agent listening on ``socket_path``, a unix socket, or at a RemoteAgent's address."""

    def __init__(self, socket_path: Path | RemoteAgent) -> None:
        self.socket_path = socket_path

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        where = self.socket_path
        try:
            if isinstance(where, RemoteAgent):
                opening = asyncio.open_connection(
                    where.address.host, where.address.port, ssl=where.context, limit=2 * protocol.MAX_PAYLOAD
                )
            else:
                opening = asyncio.open_unix_connection(str(where), limit=2 * protocol.MAX_PAYLOAD)
            return await asyncio.wait_for(opening, CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError: the other end's certificate
            raise AgentUnavailable(where, _reason(exc)) from None

    async def _exchange(
        self, request: dict[str, Any], timeout: float | None = None
    ) -> tuple[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter]:
        """Send ``request`` on a new connection and read its reply, within ``timeout`` (default
        :func:`reply_timeout`): the reply and the connection, for what follows it."""
        reader, writer = await self._open()
        try:
            writer.write(protocol.encode_json(Kind.REQUEST, request))
            await writer.drain()
        except OSError as exc:
            writer.close()
            raise AgentUnavailable(self.socket_path, str(exc) or "no reply") from None
        try:
            reply = await self._reply(reader, reply_timeout(request) if timeout is None else timeout)
        except BaseException:  # refused, failed or cancelled: do not leave the connection open
            writer.close()
            raise
        return reply, reader, writer

    async def _reply(self, reader: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
        """The next frame of ``reader``, a REPLY, within ``timeout``: AgentUnavailable if none comes,
        the agent's refusal as AgentError."""
        try:
            frame = await asyncio.wait_for(protocol.read_frame(reader), timeout)
        except (TimeoutError, OSError, protocol.ProtocolError) as exc:
            raise AgentUnavailable(self.socket_path, str(exc) or "no reply") from None
        if frame is None or frame[0] != Kind.REPLY:
            raise AgentUnavailable(self.socket_path, "closed without a reply")
        reply = protocol.decode_json(frame[1])
        _check(reply)
        return reply

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
        if isinstance(self.socket_path, RemoteAgent):
            return await self._attach_remote(request, reply_timeout(request))
        if pty:
            request["pty"] = True
        sock, _reply, fds = await self._request_with_fds(request, reply_timeout(request))
        loop = asyncio.get_running_loop()
        try:
            transport, receiver = await loop.create_unix_connection(lambda: FrameReceiver(held=True), sock=sock)
        except BaseException:  # failed or cancelled: leave nothing open
            _close(sock, fds)
            raise
        if len(fds) == 2:
            stream = TerminalStream(transport, receiver, pty_fd=fds[0], replay_fd=fds[1])
        else:  # an agent that handed over nothing (or something unexpected): an ordinary stream
            for fd in fds:
                os.close(fd)
            stream = TerminalStream(transport, receiver)
        receiver.release()  # now that the stream sees the events meant for it (``lend``)
        return stream

    async def _attach_remote(self, request: dict[str, Any], timeout: float) -> TerminalStream:
        """:meth:`attach` over TLS: the reply is the stream's first frame, and nothing is lent."""
        receiver = FrameReceiver(held=True)
        transport = await self._after_reply(request, timeout, receiver)
        stream = TerminalStream(transport, receiver)
        receiver.release()  # now that the stream sees the events meant for it
        return stream

    async def connect_port(
        self, sandbox_id: str, port: int, protocol_factory: Callable[[], asyncio.Protocol]
    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
        """A TCP connection to ``port`` of the sandbox, relayed through the agent (its ``connect``
        op): the transport, carrying that connection's bytes from now on, and the protocol
        ``protocol_factory`` made for it (its ``connection_made`` called). AgentError with the
        agent's refusal (``not_listening``, ``unreachable``, ``unknown_sandbox``), AgentUnavailable
        if the agent does not answer."""
        relayed = protocol_factory()
        request = {"op": "connect", "sandbox": sandbox_id, "port": port}
        return await self._after_reply(request, REPLY_TIMEOUT, relayed), relayed

    async def _after_reply(self, request: dict[str, Any], timeout: float, then: asyncio.Protocol) -> asyncio.Transport:
        """Send ``request`` on a new connection, read its reply (within ``timeout``), then hand the
        connection to ``then``: its ``connection_made``, and whatever arrived after the reply. For a
        connection whose reply cannot come apart from what follows it with descriptors (TLS; a
        ``connect`` on either). Raises the agent's refusal as AgentError, having closed everything."""
        loop = asyncio.get_running_loop()
        first = _ReplyFirst()
        where = self.socket_path
        try:
            if isinstance(where, RemoteAgent):
                host, port = where.address.host, where.address.port
                opening = loop.create_connection(lambda: first, host, port, ssl=where.context)
            else:
                opening = loop.create_unix_connection(lambda: first, str(where))
            transport, _ = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise AgentUnavailable(where, _reason(exc)) from None
        try:
            transport.write(protocol.encode_json(Kind.REQUEST, request))
            try:
                reply = await asyncio.wait_for(first.reply, timeout)
            except (TimeoutError, ConnectionError, protocol.ProtocolError) as exc:
                raise AgentUnavailable(where, str(exc) or "no reply") from None
            _check(reply)
            transport.set_protocol(then)
            then.connection_made(transport)
            rest = first.after_reply()  # taken now: bytes may have come since the reply was read
            if rest:
                then.data_received(rest)
            if first.lost:  # it ended before it was handed on: the next protocol is told too
                then.connection_lost(None)
            return transport
        except BaseException:  # refused, failed or cancelled: leave nothing open
            transport.close()
            raise

    async def _request_with_fds(
        self, request: dict[str, Any], timeout: float
    ) -> tuple[socket.socket, dict[str, Any], list[int]]:
        """Send ``request`` on a new connection and read its reply frame exactly, with the file
        descriptors that come with it: the connection (non-blocking; what follows the reply is
        the caller's), the reply and the descriptors (the caller's to close). Raises the agent's
        refusal as AgentError, having closed everything. This host's agent only: a TCP
        connection carries no descriptors."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        fds: list[int] = []
        loop = asyncio.get_running_loop()
        try:
            try:
                await asyncio.wait_for(loop.sock_connect(sock, str(self.socket_path)), CONNECT_TIMEOUT)
                await loop.sock_sendall(sock, protocol.encode_json(Kind.REQUEST, request))
                reply = await _reply_frame(sock, fds, timeout)
            except (TimeoutError, OSError, protocol.ProtocolError) as exc:
                raise AgentUnavailable(
                    self.socket_path, getattr(exc, "strerror", None) or str(exc) or "no reply"
                ) from None
            _check(reply)
        except BaseException:  # refused, failed or cancelled: leave nothing open
            _close(sock, fds)
            raise
        return sock, reply, fds

    async def put_file(
        self, sandbox_id: str, path: str, source: int, size: int, terminal: int | None = None
    ) -> dict[str, Any]:
        """Write the next ``size`` bytes of the regular file ``source`` (from its offset) to
        ``path`` in the sandbox: ``{"path": absolute path in the sandbox, "size": n}``. The bytes
        go through a pipe the agent hands over, never through the protocol's frames. A relative
        ``path`` goes to the current directory of ``terminal``'s foreground process, or /root.
        The agent hands the pipe over (or says ``send`` over TCP) only once the upload's turn came,
        up to 30 s on a busy host (``host_busy`` after, nothing of the file sent), which the
        REPLY_TIMEOUT of that first reply covers."""
        request: dict[str, Any] = {"op": "put_file", "sandbox": sandbox_id, "path": path, "size": size}
        if terminal is not None:
            request["terminal"] = terminal
        if isinstance(self.socket_path, RemoteAgent):
            return await self._put_inline(request, source, size)
        sock, _ready, fds = await self._request_with_fds(request, REPLY_TIMEOUT)
        try:
            if len(fds) != 1:
                raise AgentUnavailable(self.socket_path, "the agent sent no pipe for the file's bytes")
            try:
                await asyncio.to_thread(_send_file, source, fds[0], size)
            except BrokenPipeError:
                pass  # the agent stopped reading: its reply says why
            except OSError as exc:
                raise AgentUnavailable(self.socket_path, f"the file's bytes could not be sent: {exc}") from None
            os.close(fds.pop())
            try:
                reply = await _reply_frame(sock, fds, FILE_TIMEOUT)
            except (TimeoutError, OSError, protocol.ProtocolError) as exc:
                raise AgentUnavailable(self.socket_path, str(exc) or "no reply") from None
            _check(reply)
            return reply
        finally:
            _close(sock, fds)

    async def _put_inline(self, request: dict[str, Any], source: int, size: int) -> dict[str, Any]:
        """:meth:`put_file` over TCP: the bytes follow the agent's first reply on the connection, and
        the agent reads them all before it answers."""
        _ready, reader, writer = await self._exchange({**request, "inline": True})
        try:
            try:
                sent = await asyncio.wait_for(_send_inline(source, size, writer), FILE_TIMEOUT)
            except OSError as exc:
                raise AgentUnavailable(self.socket_path, f"the file's bytes could not be sent: {exc}") from None
            if sent < size:  # the agent waits for the rest: hang up, and it writes nothing
                raise AgentError(
                    "incomplete", f"only {sent} of the {size} bytes announced could be read; nothing written"
                )
            return await self._reply(reader, FILE_TIMEOUT)
        finally:
            writer.close()

    async def get_file(
        self, sandbox_id: str, path: str, limit: int, terminal: int | None = None
    ) -> tuple[dict[str, Any], int]:
        """The file ``path`` of the sandbox, if at most ``limit`` bytes: ``({"path", "size"}, fd)``,
        ``fd`` a memfd holding the bytes from offset 0, which the caller must close. A relative
        ``path`` is resolved as for :meth:`put_file`."""
        request: dict[str, Any] = {"op": "get_file", "sandbox": sandbox_id, "path": path, "limit": limit}
        if terminal is not None:
            request["terminal"] = terminal
        return await self._memfd_reply(request, "the file's bytes")

    async def get_tree(self, sandbox_id: str, path: str, limit: int) -> tuple[dict[str, Any], int]:
        """The absolute directory ``path`` of the sandbox and all below it as a tar, if at most
        ``limit`` bytes: ``({"path", "size"}, fd)`` as :meth:`get_file` (the caller closes ``fd``)."""
        request: dict[str, Any] = {"op": "get_tree", "sandbox": sandbox_id, "path": path, "limit": limit}
        return await self._memfd_reply(request, "the directory's tar")

    async def _memfd_reply(self, request: dict[str, Any], what: str) -> tuple[dict[str, Any], int]:
        """The reply to ``request`` and the one descriptor it carries (``what`` it holds, for the
        error); over TCP, a memfd holding the bytes that follow the reply."""
        if isinstance(self.socket_path, RemoteAgent):
            return await self._memfd_inline(request, what)
        sock, reply, fds = await self._request_with_fds(request, FILE_TIMEOUT)
        sock.close()
        if len(fds) != 1:
            _close(None, fds)
            raise AgentUnavailable(self.socket_path, f"the agent sent no descriptor with {what}")
        return reply, fds[0]

    async def _memfd_inline(self, request: dict[str, Any], what: str) -> tuple[dict[str, Any], int]:
        reply, reader, writer = await self._exchange({**request, "inline": True}, FILE_TIMEOUT)
        memfd = os.memfd_create("pg-download", os.MFD_CLOEXEC)
        try:
            size = reply.get("size")
            if not isinstance(size, int) or not 0 <= size <= request["limit"]:
                raise AgentUnavailable(self.socket_path, f"the agent announced {what} of {size!r} bytes")
            left = size
            while left > 0:
                chunk = await asyncio.wait_for(reader.read(min(left, CHUNK)), REPLY_TIMEOUT)
                if not chunk:
                    raise AgentUnavailable(self.socket_path, f"{what} ended {left} bytes early")
                os.write(memfd, chunk)
                left -= len(chunk)
            os.lseek(memfd, 0, os.SEEK_SET)
        except (TimeoutError, OSError) as exc:
            os.close(memfd)
            raise AgentUnavailable(self.socket_path, f"{what} did not all come ({_reason(exc)})") from None
        except BaseException:
            os.close(memfd)
            raise
        finally:
            writer.close()
        reply.pop("inline", None)
        return reply, memfd

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Synchronous :meth:`request`, for code that has no event loop (Celery tasks)."""
        return asyncio.run(self.request(op, **fields))


class _ReplyFirst(asyncio.Protocol):
    """Reads a connection's first frame, its REPLY (``reply``'s result), keeping what follows it
    (``after_reply``) for the protocol the connection is handed to next."""

    def __init__(self) -> None:
        self.reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.end = 0  # where the reply frame ends in ``buffer``, once read
        self.lost = False  # the connection ended (before it was handed on)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.reply.done() or len(self.buffer) < protocol.HEADER.size:
            return
        kind, length = protocol.HEADER.unpack_from(self.buffer)
        if kind != Kind.REPLY or length > protocol.MAX_PAYLOAD:
            self.reply.set_exception(protocol.ProtocolError("the agent sent no reply"))
        elif len(self.buffer) >= protocol.HEADER.size + length:
            self.end = protocol.HEADER.size + length
            try:
                self.reply.set_result(protocol.decode_json(bytes(self.buffer[protocol.HEADER.size : self.end])))
            except protocol.ProtocolError as exc:
                self.reply.set_exception(exc)

    def after_reply(self) -> bytes:
        """What came after the reply frame (all of it, until the connection is handed on)."""
        return bytes(self.buffer[self.end :])

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.reply.done():
            self.reply.set_exception(ConnectionResetError("the agent closed the connection without a reply"))


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (a TLS refusal names what OpenSSL found)."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return getattr(exc, "strerror", None) or str(exc) or "timeout"


def _close(sock: socket.socket | None, fds: list[int]) -> None:
    if sock is not None:
        sock.close()
    for fd in fds:
        os.close(fd)
    fds.clear()


async def _reply_frame(sock: socket.socket, fds: list[int], timeout: float) -> dict[str, Any]:
    """The next frame of ``sock``, a REPLY, read exactly (the fds that come with it added to ``fds``)."""
    header = await asyncio.wait_for(_receive(sock, protocol.HEADER.size, fds), timeout)
    kind, length = protocol.HEADER.unpack(header)
    if kind != Kind.REPLY or length > protocol.MAX_PAYLOAD:
        raise protocol.ProtocolError("the agent sent no reply")
    return protocol.decode_json(await asyncio.wait_for(_receive(sock, length, fds), REPLY_TIMEOUT))


def _send_file(source: int, target: int, size: int) -> None:
    """Copy ``size`` bytes of ``source`` from its offset to the blocking ``target`` (a pipe)."""
    left = size
    while left > 0:
        sent = os.sendfile(target, source, None, min(left, 1 << 20))
        if sent == 0:
            break
        left -= sent


async def _send_inline(source: int, size: int, writer: asyncio.StreamWriter) -> int:
    """Send the next ``size`` bytes of the regular file ``source`` on ``writer``: the bytes sent,
    fewer if the file ends first."""
    left = size
    while left > 0 and (chunk := os.read(source, min(left, CHUNK))):
        writer.write(chunk)
        await writer.drain()
        left -= len(chunk)
    return size - left


def _check(reply: dict[str, Any]) -> None:
    """Raise the agent's refusal as AgentError."""
    if not reply.get("ok"):
        raise AgentError(str(reply.get("error")), str(reply.get("message")))


async def _receive(sock: socket.socket, size: int, fds: list[int]) -> bytes:
    """Exactly ``size`` bytes from a non-blocking ``sock``, adding the fds that come with them to ``fds``."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk, received, _flags, _addr = socket.recv_fds(sock, size - len(data), 2, socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            await fdwait.ready(sock.fileno())
            continue
        fds.extend(received)
        if not chunk:
            raise ConnectionResetError("the agent closed the connection")
        data += chunk
    return bytes(data)
