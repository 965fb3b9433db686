"""The terminal keeper: ``python -m sandbox.keeper`` holds every sandbox's PTY master and replay
memfd, so a visitor's shell outlives the agent (a crash, a SIGKILL, an upgrade).

Why a separate process: a PTY whose master is closed hangs up its shell. The agent hands a
duplicate of each sandbox's fds to the keeper when the sandbox starts, and takes them back
when it starts again; the keeper does nothing else, so it has no reason to crash or to be
upgraded, and the agent can be restarted at will. The agent works without it, but then its
sandboxes die with it (their sessions end as ``host_lost``).

Protocol, on a root-only unix socket (``<run dir>/keeper.sock``), one request per connection,
a JSON object, with the fds attached (SCM_RIGHTS) where noted:

- ``{"op": "keep", "key": K}`` + fds: hold them under ``K`` (replacing and closing earlier ones).
- ``{"op": "get", "key": K}``: reply ``{"ok": true, "fds": n}`` + duplicates of K's fds.
- ``{"op": "drop", "key": K}``: close K's fds (the shell hangs up once the agent closed its own).
- ``{"op": "keys"}``: reply ``{"ok": true, "keys": [...]}``.

Every reply is ``{"ok": true, ...}`` or ``{"ok": false, "message": ...}``. The agent's side is
:class:`sandbox.keeper.client.KeeperClient`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from sandbox.host import daemon
from sandbox.keeper.channel import MAX_FDS, MAX_MESSAGE, TIMEOUT, close_all

log = logging.getLogger("sandbox.keeper")


class Keeper:
    """Holds fds by key; :meth:`handle` serves one connection."""

    def __init__(self) -> None:
        self.held: dict[str, list[int]] = {}

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        try:
            message, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, MAX_FDS)
        except OSError as exc:
            log.warning("dropped a request: %s", exc)
            return
        out: list[int] = []
        try:
            reply, out = self.serve(json.loads(message or b"null"), fds)
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "message": f"bad request: {exc}"}
        finally:
            close_all(fds)  # whatever ``serve`` did not take
        try:
            socket.send_fds(conn, [json.dumps(reply).encode()], out)
        except OSError as exc:
            log.warning("could not reply: %s", exc)
        finally:
            close_all(out)

    def serve(self, request: Any, fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        """Carry out ``request``; returns the reply and fds to send with it (closed after sending).

        Takes the received ``fds`` out of the list when it keeps them; the caller closes the rest.
        """
        op, key = request["op"], request.get("key")
        if op == "keep" and isinstance(key, str) and fds:
            close_all(self.held.pop(key, []))
            self.held[key] = fds[:]
            fds.clear()
            return {"ok": True}, []
        if op == "get" and isinstance(key, str):
            if key not in self.held:
                return {"ok": False, "message": f"nothing kept under {key}"}, []
            return {"ok": True, "fds": len(self.held[key])}, [os.dup(fd) for fd in self.held[key]]
        if op == "drop" and isinstance(key, str):
            close_all(self.held.pop(key, []))
            return {"ok": True}, []
        if op == "keys":
            return {"ok": True, "keys": sorted(self.held)}, []
        raise ValueError(f"unknown or incomplete request {request!r}")


def serve_forever(path: Path) -> None:
    """Listen on ``path`` (mode 0600) until SIGTERM/SIGINT; then every held fd closes."""
    keeper = Keeper()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        listener.listen(64)
        print(f"keeper ready on {path}", flush=True)
        while True:
            conn, _ = listener.accept()
            with conn:
                keeper.handle(conn)


def main() -> int:
    cfg = daemon.prepare("keeper", "it holds the agent's terminals")
    if cfg is None:
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve_forever(cfg.keeper_socket)
    except KeyboardInterrupt:
        pass
    return 0
