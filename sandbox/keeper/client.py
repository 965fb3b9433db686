"""The agent's client of the terminal keeper (:mod:`sandbox.keeper.service`): hands it fds under
a key, gets duplicates back, drops them, lists the keys. Every call is one connection and raises
:class:`KeeperError` if the keeper does not answer or refuses. Imports only the standard library
and :mod:`sandbox.keeper.channel`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from sandbox.keeper.channel import MAX_FDS, MAX_MESSAGE, TIMEOUT, close_all


class KeeperError(Exception):
    """The keeper did not answer or refused; the message says which."""


class KeeperClient:
    """Talks to the keeper at ``path``; every call raises KeeperError if it cannot."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep(self, key: str, fds: list[int]) -> None:
        self._call({"op": "keep", "key": key}, fds)

    def get(self, key: str) -> list[int]:
        """Duplicates of ``key``'s fds, owned by the caller."""
        return self._call({"op": "get", "key": key})[1]

    def drop(self, key: str) -> None:
        self._call({"op": "drop", "key": key})

    def keys(self) -> set[str]:
        return set(self._call({"op": "keys"})[0]["keys"])

    def available(self) -> bool:
        try:
            self.keys()
        except KeeperError:
            return False
        return True

    def _call(self, request: dict[str, Any], fds: list[int] | None = None) -> tuple[dict[str, Any], list[int]]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(TIMEOUT)
                conn.connect(str(self.path))
                socket.send_fds(conn, [json.dumps(request).encode()], fds or [])
                conn.shutdown(socket.SHUT_WR)
                message, received, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, MAX_FDS)
        except OSError as exc:
            raise KeeperError(f"the terminal keeper at {self.path} did not answer: {exc}") from None
        for fd in received:
            os.set_inheritable(fd, False)
        try:
            reply = json.loads(message)
        except ValueError:
            close_all(received)
            raise KeeperError(f"the terminal keeper sent a bad reply: {message[:200]!r}") from None
        if not reply.get("ok"):
            close_all(received)
            raise KeeperError(f"the terminal keeper refused {request['op']}: {reply.get('message')}")
        return reply, received
