"""The agent's ``put_file`` and ``get_file`` ops: the requests, their replies and the descriptors
that carry the bytes (the work inside the sandbox is :mod:`sandbox.runtime.files`).

- ``{"op": "put_file", "sandbox": id, "path": p, "size": n, "terminal": t (optional)}``: the
  first REPLY ``{"ok": true, "send": true}`` carries (SCM_RIGHTS) the write end of a pipe: the
  client writes exactly ``n`` bytes to it and closes it; the second REPLY is ``{"ok": true,
  "path": absolute path, "size": n}`` or a refusal. A refusal may also come first, instead of
  the pipe (an unknown sandbox, a bad field, ``busy``).
- ``{"op": "get_file", "sandbox": id, "path": p, "limit": n, "terminal": t (optional)}``: one
  REPLY ``{"ok": true, "path", "size"}`` carrying a memfd with the file's bytes at offset 0, or
  a refusal (``too_large`` past ``limit`` bytes).

- ``{"op": "get_tree", "sandbox": id, "path": absolute directory, "limit": n}``: as ``get_file``,
  the memfd holding a tar of the directory and all below it (paths ``./...``), or a refusal
  (``no_such_file``, ``too_large`` past ``limit`` bytes, ``bad_path`` for an image without tar).
  Added compatibly: an older agent answers ``bad_request`` (unknown operation).

A relative ``path`` is resolved against the current directory of the foreground process of the
sandbox's terminal ``t`` (what its shell's ``pwd`` says while at its prompt), or ``/root``
without ``t``. Refusals: ``is_directory``, ``no_such_file``, ``bad_path``, ``too_large``,
``disk_full``, ``incomplete``, ``unknown_terminal``, ``busy``, ``timeout``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from sandbox.agent.attach import send_with_fds
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Request
from sandbox.runtime.files import FileMover
from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError

MAX_PATH = 4096
MAX_BYTES = 1 << 30  # the most a request may announce or allow; the web tier's limit is lower


@dataclass(eq=False)
class Files:
    """Serves the file ops for the sandboxes of ``registry``."""

    registry: Registry
    mover: FileMover

    async def serve(self, op: str, request: Request, writer: asyncio.StreamWriter) -> None:
        """Answer one ``put_file``, ``get_file`` or ``get_tree`` request on ``writer`` (see the module's doc);
        a refusal before anything was sent is raised as AgentError, for the dispatcher to send."""
        sandbox = self.registry.live(request, key="sandbox")
        path = _path(request)
        if op == "get_tree":
            if not path.startswith("/"):
                raise AgentError("bad_path", f"path={path!r} is invalid; name the directory by its absolute path")
            reply, memfd = await self.mover.get_tree(sandbox.runtime_id, path, _count(request, "limit"))
            try:
                send_with_fds(writer, protocol.encode_reply(reply), [memfd])
            finally:
                os.close(memfd)
            return
        pid = _cwd_pid(sandbox, request)
        if op == "get_file":
            reply, memfd = await self.mover.get(sandbox.runtime_id, path, pid, _count(request, "limit"))
            try:
                send_with_fds(writer, protocol.encode_reply(reply), [memfd])
            finally:
                os.close(memfd)
            return
        sent = False

        def hand_over(fd: int) -> None:
            nonlocal sent
            send_with_fds(writer, protocol.encode_reply({"send": True}), [fd])
            sent = True

        try:
            reply = await self.mover.put(sandbox.runtime_id, path, pid, _count(request, "size"), hand_over)
        except AgentError as exc:
            if not sent:
                raise
            writer.write(protocol.encode_refusal(exc.code, exc.message))
            return
        writer.write(protocol.encode_reply(reply))


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
