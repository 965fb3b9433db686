"""What the launcher checks before and while starting: the sandbox host's settings, whether the web
user can reach the data directory, and whether Redis, a unix socket or the web server answers."""

from __future__ import annotations

import pwd
import socket
import subprocess
import urllib.request
from pathlib import Path

from playground.config import REPO_DIR
from playground.launcher import commands


class LaunchError(Exception):
    """Start-up cannot go on; the message says what to fix."""


def sandbox_settings_problem() -> str | None:
    """What is wrong with the sandbox host's settings, in its own words, or None if nothing is.

    The agent and the keeper check their settings when they start; asking first (in a process of
    its own, as the launcher imports nothing of the sandbox host) stops a bad value before
    anything is started, with the message naming the variable.
    """
    done = subprocess.run(commands.check_sandbox_settings(), cwd=REPO_DIR, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    return done.stderr.strip() or f"playground: checking the sandbox host's settings failed (exit {done.returncode})"


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Check that the web user can reach ``path`` (every parent must be searchable)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise LaunchError(
                f"{parent} is not searchable by other users, so the web user "
                f"{user.pw_name!r} cannot reach {path}; choose another PLAYGROUND_DATA_DIR "
                f"or run 'chmod o+x {parent}'."
            )


def redis_answers(host: str, port: int) -> bool:
    """Whether a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def socket_answers(path: Path) -> bool:
    """Whether a server listens at the unix socket ``path`` and serves a connection.

    Sends nothing: it connects, closes its writing side and waits for the server's answer (to an
    empty request) or its hanging up, so the server is not left writing to a closed socket.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(path))
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
        return True
    except OSError:
        return False


def http_answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False
