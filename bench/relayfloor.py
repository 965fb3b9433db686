"""The floor of the remote path's relay on this machine: what any relay adds, however lean.

Keystroke echo of ``dd bs=1`` on a PTY of this machine (no sandbox), typed two ways in alternating
blocks: straight into the PTY (as the web tier types into a lent PTY), and through a minimal relay
process over mutual TLS on TCP to an address of this machine, with the agents' own TLS settings
(:mod:`sandbox.wire.tls`).
The relay is as lean as a relay gets: blocking reads and writes, no event loop, no framing, no
replay. What it adds is the price of the hop itself on this machine (a TCP connection each way,
one process more to wake, TLS records), which no relay written in any language avoids; what the
agent adds beyond it (bench/remote.py) is the agent's own doing.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import ssl
import time
from pathlib import Path

from sandbox.wire import tls

BLOCK = 50  # keystrokes typed one way before switching to the other


def relay_floor(tls_dir: Path, host: str, keystrokes: int) -> dict[str, list[float]]:
    """Echo latencies (seconds) of ``keystrokes`` keystrokes each way: ``pty`` straight into the PTY,
    ``relay`` through the minimal TLS relay listening on ``host`` (an address of this machine that the
    agent's certificate in ``tls_dir`` names; the site's certificate is there too)."""
    direct_pid, direct_fd = _dd_on_pty(keystrokes)
    relayed_pid, relayed_fd = _dd_on_pty(keystrokes)
    listener = socket.create_server((host, 0))
    relay = os.fork()
    if relay == 0:  # the relay: one connection, then exit
        os.close(direct_fd)
        try:
            _relay(listener, tls.server_context(tls_dir), relayed_fd)
        finally:
            os._exit(0)
    listener_address = listener.getsockname()
    listener.close()
    os.close(relayed_fd)
    connection = tls.client_context(tls_dir).wrap_socket(
        socket.create_connection(listener_address), server_hostname=host
    )
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples: dict[str, list[float]] = {"pty": [], "relay": []}
    ways = {
        "pty": (lambda: os.write(direct_fd, b"x"), lambda: os.read(direct_fd, 1)),
        "relay": (lambda: connection.sendall(b"x"), lambda: connection.recv(1)),
    }
    try:
        for start in range(0, keystrokes, BLOCK):
            order = ("pty", "relay") if start // BLOCK % 2 == 0 else ("relay", "pty")
            for name in order:
                send, receive = ways[name]
                for _ in range(min(BLOCK, keystrokes - start)):
                    started = time.perf_counter()
                    send()
                    echo = receive()
                    samples[name].append(time.perf_counter() - started)
                    if echo != b"x":
                        raise AssertionError(f"relay floor: expected the echo b'x' ({name}), got {echo!r}")
    finally:
        connection.close()
        os.close(direct_fd)
        for pid in (relay, direct_pid, relayed_pid):
            os.waitpid(pid, 0)
    return samples


def _dd_on_pty(count: int) -> tuple[int, int]:
    """A shell on a new PTY that sets raw mode and runs ``dd bs=1 count=count``: (pid, PTY master),
    once it is ready to echo."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("sh", ["sh", "-c", f"stty raw -echo; printf READY; exec dd bs=1 count={count} 2>/dev/null"])
    seen = b""
    while b"READY" not in seen:
        seen += os.read(fd, 64)
    return pid, fd


def _relay(listener: socket.socket, context: ssl.SSLContext, fd: int) -> None:
    """Carry bytes between the one TLS connection ``listener`` accepts and the PTY ``fd``, until
    either ends."""
    plain, _ = listener.accept()
    listener.close()
    plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(plain, server_side=True) as connection:
        sock = connection.fileno()
        while True:
            ready = [sock] if connection.pending() else select.select([sock, fd], [], [])[0]
            if sock in ready:
                data = connection.recv(4096)
                if not data:
                    return
                os.write(fd, data)
            if fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the shell is gone
                    return
                connection.sendall(data)
