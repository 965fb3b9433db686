"""``attach``: streaming one terminal of a sandbox to a viewer over the agent's socket.

The reply comes first (optionally with duplicates of the PTY master and replay memfd, so the
viewer may be lent the reading, see :mod:`sandbox.pty.terminal`), then the replay and live
output as DATA frames and events; the viewer sends input, resizes, pauses and GIVEN. The stream
ends when the viewer hangs up or the terminal is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from sandbox.agent import requestfields
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Request
from sandbox.agent.shells import ShellPlacer
from sandbox.pty.terminal import HIGH_WATER, Terminal
from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError, Kind, ProtocolError

log = logging.getLogger("sandbox.agent")

MAX_ATTACH_WAIT = 300


class AttachedViewer:
    """The agent's end of one ``attach`` connection (a :class:`sandbox.pty.terminal.Viewer`)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.paused = False
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)

    def send_output(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        for start in range(0, len(data), protocol.MAX_PAYLOAD):
            self.writer.write(protocol.encode(Kind.DATA, data[start : start + protocol.MAX_PAYLOAD]))

    def send_event(self, event: dict[str, object]) -> None:
        if not self.writer.is_closing():
            self.writer.write(protocol.encode_json(Kind.EVENT, event))

    def hang_up(self) -> None:
        """End the stream once what is queued is sent (its terminal was closed)."""
        self.writer.close()

    def backlog(self) -> int:
        return 0 if self.writer.is_closing() else self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass


class Attacher:
    """Serves ``attach`` requests for the sandboxes of ``registry``; each attached terminal's shell
    goes to the terminals' CPU group (``shells``, see :mod:`sandbox.agent.shells`)."""

    def __init__(self, registry: Registry, shells: ShellPlacer | None = None) -> None:
        self.registry = registry
        self.shells = shells

    async def attach(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lend: bool = True
    ) -> None:
        """Stream a terminal: replay, then live output; input, resize and pause from the client.

        With ``"wait": seconds`` (at most MAX_ATTACH_WAIT) the reply waits until a sandbox
        being created exists, so a viewer sees its first prompt the moment there is one.
        ``"terminal": n`` chooses a tab (default 0, the first shell); a closed tab's stream ends.
        With ``"pty": true`` the reply carries duplicates of the PTY master and the replay memfd,
        and the viewer may be lent the reading (see :mod:`sandbox.wire.protocol`), unless ``lend`` is
        false (a connection that cannot carry descriptors): then it streams as without ``pty``.
        """
        sandbox_id = requestfields.sandbox_id(request)
        wait = request.get("wait", 0)
        if not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_ATTACH_WAIT:
            raise AgentError("bad_request", f"wait={wait!r} is invalid; use 0 to {MAX_ATTACH_WAIT} seconds")
        number = requestfields.terminal_number(request)
        hand_over = request.get("pty", False)
        if not isinstance(hand_over, bool):
            raise AgentError("bad_request", f"pty={hand_over!r} is invalid; use true or false")
        sandbox = await self.registry.wait_for_terminal(sandbox_id, float(wait))
        if sandbox is None or sandbox.terminal is None:
            raise AgentError("unknown_sandbox", f"no sandbox {sandbox_id} on this host")
        terminal = sandbox.terminal_of(number)
        if terminal is None:
            raise AgentError(
                "unknown_terminal", f"sandbox {sandbox_id} has no terminal {number}: it was closed, or never opened"
            )
        if self.shells is not None:
            self.shells.place_soon(sandbox.runtime_id, terminal.fd)
        await terminal.take_back()  # a viewer reading the PTY itself stops before this one gets the replay
        reply = protocol.encode_reply({"sandbox": sandbox.describe(), "terminal": number})
        hand_over = hand_over and lend and terminal.replay.size_sealed  # (a buffer of an older agent may not be)
        if hand_over:
            send_with_fds(writer, reply, [terminal.fd, terminal.replay.fd])
        else:
            writer.write(reply)
        viewer = AttachedViewer(writer)
        terminal.attach(viewer, can_borrow=hand_over)
        try:
            while True:
                frame = await protocol.read_frame(reader)
                if frame is None:
                    break
                await _stream_frame(terminal, viewer, *frame)
        except (ProtocolError, ConnectionError) as exc:
            log.info("terminal stream of %s ended: %s", sandbox_id, exc)
        finally:
            terminal.detach(viewer)
            terminal.viewer_changed()


async def _stream_frame(terminal: Terminal, viewer: AttachedViewer, kind: Kind, payload: bytes) -> None:
    """Carry out one frame a viewer sent on its terminal stream; ProtocolError if it is not allowed."""
    if kind == Kind.DATA:
        await terminal.write(payload)
    elif kind == Kind.RESIZE:
        size = protocol.decode_json(payload)
        cols, rows = size.get("cols"), size.get("rows")
        if not isinstance(cols, int) or not isinstance(rows, int):
            raise ProtocolError("resize needs integer cols and rows")
        terminal.resize(cols, rows)
    elif kind == Kind.TYPED:
        terminal.typed()
    elif kind == Kind.GIVEN:
        terminal.given(viewer)
    elif kind in (Kind.PAUSE, Kind.RESUME):
        viewer.paused = kind == Kind.PAUSE
        terminal.viewer_changed()
    else:
        raise ProtocolError(f"frame kind {kind.name} is not allowed on a terminal stream")


def send_with_fds(writer: asyncio.StreamWriter, data: bytes, fds: list[int]) -> None:
    """Write ``data``, the first bytes of the connection, with duplicates of ``fds`` attached
    (SCM_RIGHTS). If the socket cannot take them now, ``data`` goes without the fds: the client
    then sends its input through the agent, as without ``pty``."""
    sock = writer.get_extra_info("socket")
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as same:  # the transport's socket wrapper has no sendmsg
            sent = socket.send_fds(same, [data], fds)
    except BlockingIOError:
        sent = 0
    writer.write(data[sent:])
