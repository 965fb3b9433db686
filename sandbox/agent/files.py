"""The agent's ``put_file`` and ``get_file`` ops: the requests, their replies and the descriptors
that carry the bytes (the work inside the sandbox is :mod:`sandbox.runtime.files`).

- ``{"op": "put_file", "sandbox": id, "path": p, "size": n, "terminal": t (optional)}``: the
  first REPLY ``{"ok": true, "send": true}`` carries (SCM_RIGHTS) the write end of a pipe: the
  client writes exactly ``n`` bytes to it and closes it; the second REPLY is ``{"ok": true,
  "path": absolute path, "size": n}`` or a refusal. A refusal may also come first, instead of
  the pipe (an unknown sandbox, a bad field, ``busy``, ``host_busy`` after waiting its turn).
- ``{"op": "get_file", "sandbox": id, "path": p, "limit": n, "terminal": t (optional)}``: one
  REPLY ``{"ok": true, "path", "size"}`` carrying a memfd with the file's bytes at offset 0, or
  a refusal (``too_large`` past ``limit`` bytes).

- ``{"op": "get_tree", "sandbox": id, "path": absolute directory, "limit": n}``: as ``get_file``,
  the memfd holding a tar of the directory and all below it (paths ``./...``), or a refusal
  (``no_such_file``, ``too_large`` past ``limit`` bytes, ``bad_path`` for an image without tar).
  Added compatibly: an older agent answers ``bad_request`` (unknown operation).

Over TCP (the site's connection to the agent of another host, :mod:`sandbox.wire.tls`), which
carries no descriptors, the bytes go on the connection itself, raw, right after a reply (a request
with ``"inline": true``, which the agent of another host needs):

- ``put_file``: the first REPLY is ``{"ok": true, "send": true, "inline": true}``; the client then
  sends exactly ``n`` bytes (or closes early: ``incomplete``), which the agent reads to the end
  whatever becomes of them, and the second REPLY follows as above.
- ``get_file``, ``get_tree``: the REPLY ``{"ok": true, "path", "size", "inline": true}`` is
  followed by exactly ``size`` bytes, then the agent closes the connection.

A relative ``path`` is resolved against the current directory of the foreground process of the
sandbox's terminal ``t`` (what its shell's ``pwd`` says while at its prompt), or ``/root``
without ``t``. Refusals: ``is_directory``, ``no_such_file``, ``bad_path``, ``too_large``,
``disk_full``, ``incomplete``, ``unknown_terminal``, ``busy``, ``host_busy``, ``timeout``.

A client that closes the connection while it has nothing to send (a download before its reply, an
upload before it is told to send) ends the transfer where it is (:mod:`sandbox.agent.hangup`):
waiting for its turn, it gives its place up; running, its script is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.agent.attach import send_with_fds
from sandbox.agent.hangup import HangUpWatch, while_client_waits
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Request
from sandbox.runtime.files import FileMover
from sandbox.wire import fdwait, protocol
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.agent")

MAX_PATH = 4096
MAX_BYTES = 1 << 30  # the most a request may announce or allow; the web tier's limit is lower
CHUNK = 1 << 18  # bytes read or sent at a time on a connection carrying a file inline
LATE_BYTES_TIMEOUT = 30.0  # seconds the rest of an upload may take to come once its result is known


@dataclass(eq=False)
class Files:
    """Serves the file ops for the sandboxes of ``registry``."""

    registry: Registry
    mover: FileMover

    async def serve(
        self, op: str, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tcp: bool
    ) -> None:
        """Answer one ``put_file``, ``get_file`` or ``get_tree`` request on ``writer`` (see the module's
        doc); ``tcp``: the connection carries no descriptors, so the bytes go on it (the request must
        say ``inline``). A refusal before anything was sent is raised as AgentError, for the
        dispatcher to send."""
        if tcp and request.get("inline") is not True:
            raise AgentError(
                "not_supported", 'this agent is on another host: ask with "inline": true for the bytes to come inline'
            )
        sandbox = self.registry.live(request, key="sandbox")
        path = _path(request)
        try:
            if op == "put_file":
                await self._put(sandbox, request, path, reader, writer, tcp)
                return
            reply, memfd = await while_client_waits(self._get(op, sandbox, request, path), reader)
        except ConnectionError:
            log.info("%s in %s ended: its client closed the connection", op, sandbox.sandbox_id)
            raise
        try:
            if tcp:
                writer.write(protocol.encode_reply({**reply, "inline": True}))
                await _send_inline(memfd, reply["size"], writer)
            else:
                send_with_fds(writer, protocol.encode_reply(reply), [memfd])
        finally:
            os.close(memfd)

    async def _get(self, op: str, sandbox: Sandbox, request: Request, path: str) -> tuple[dict[str, Any], int]:
        """``get_file`` or ``get_tree``'s reply and memfd (the caller's to close)."""
        if op == "get_tree":
            if not path.startswith("/"):
                raise AgentError("bad_path", f"path={path!r} is invalid; name the directory by its absolute path")
            return await self.mover.get_tree(sandbox.runtime_id, path, _count(request, "limit"))
        pid = _cwd_pid(sandbox, request)
        return await self.mover.get(sandbox.runtime_id, path, pid, _count(request, "limit"))

    async def _put(
        self,
        sandbox: Sandbox,
        request: Request,
        path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tcp: bool,
    ) -> None:
        pid = _cwd_pid(sandbox, request)
        size = _count(request, "size")
        receiving: asyncio.Task[None] | None = None
        watch = HangUpWatch(reader)  # until the client is told to send

        def hand_over(fd: int) -> None:
            nonlocal receiving
            watch.stop()
            if tcp:
                writer.write(protocol.encode_reply({"send": True, "inline": True}))
                receiving = asyncio.ensure_future(_receive_inline(reader, os.dup(fd), size))
            else:
                send_with_fds(writer, protocol.encode_reply({"send": True}), [fd])

        try:  # a refusal, before or after the first reply, is the dispatcher's to send
            reply = await watch.run(self.mover.put(sandbox.runtime_id, path, pid, size, hand_over))
        finally:
            if receiving is not None:  # what the client sends is read to its end before the answer
                await _finish(receiving)
        writer.write(protocol.encode_reply(reply))


async def _receive_inline(reader: asyncio.StreamReader, fd: int, size: int) -> None:
    """Read ``size`` bytes from ``reader`` (fewer if it ends first) into the pipe ``fd``, then close
    it. Once the pipe's reader is gone (the script refused, or ended), the rest is read and dropped,
    so that the client, still sending, gets the answer rather than a reset connection."""
    os.set_blocking(fd, False)
    left = size
    try:
        while left > 0 and (chunk := await reader.read(min(left, CHUNK))):
            left -= len(chunk)
            view = memoryview(chunk)
            while view and fd >= 0:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await fdwait.ready(fd, write=True)
                except BrokenPipeError:
                    os.close(fd)
                    fd = -1
    finally:
        if fd >= 0:
            os.close(fd)


async def _finish(receiving: asyncio.Task[None]) -> None:
    """Wait for the rest of an upload, at most LATE_BYTES_TIMEOUT (a stalled client is let go)."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(receiving, LATE_BYTES_TIMEOUT)


async def _send_inline(memfd: int, size: int, writer: asyncio.StreamWriter) -> None:
    """Send the ``size`` bytes of ``memfd`` from offset 0 on ``writer``, at the pace the client reads."""
    offset = 0
    while offset < size:
        chunk = os.pread(memfd, min(CHUNK, size - offset), offset)
        if not chunk:  # cannot be (the memfd is the agent's own): the client sees the bytes end early
            raise ConnectionAbortedError(f"the file's bytes ended at {offset} of {size}")
        writer.write(chunk)
        await writer.drain()
        offset += len(chunk)


def _path(request: Request) -> str:
    path = request.get("path")
    if not isinstance(path, str) or not path or len(path.encode()) > MAX_PATH or "\0" in path or "\n" in path:
        raise AgentError(
            "bad_path", f"path={path!r} is invalid; use a file's path of at most {MAX_PATH} bytes, without a new line"
        )
    return path


def _count(request: Request, key: str) -> int:
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BYTES:
        raise AgentError("bad_request", f"{key}={value!r} is invalid; use a number of bytes up to {MAX_BYTES}")
    return value


def _cwd_pid(sandbox: Sandbox, request: Request) -> int | None:
    """The pid, in the sandbox's pid namespace, of the foreground process of the request's
    terminal (its current directory is where relative paths go); None without a terminal, or
    when the terminal has no foreground process the agent can name."""
    number = request.get("terminal")
    if number is None:
        return None
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= protocol.MAX_TERMINAL:
        raise AgentError("bad_request", f"terminal={number!r} is invalid; use a terminal number (0 is the first)")
    terminal = sandbox.terminal_of(number)
    if terminal is None or terminal.exited:
        raise AgentError("unknown_terminal", f"sandbox {sandbox.sandbox_id} has no terminal {number}")
    try:
        group = os.tcgetpgrp(terminal.fd)
    except OSError:
        return None
    return pid_inside(group) if group > 0 else None


def pid_inside(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The pid of host process ``pid`` in the pid namespace one level below the agent's (a
    sandbox's), from the ``NSpid`` line of its status; None if it is gone or not in one."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            pids = line.split()[1:]
            return int(pids[1]) if len(pids) > 1 else None
    return None
