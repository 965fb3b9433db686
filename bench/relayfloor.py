"""The floor of the remote path's relay on this machine: what any relay adds, however lean.

Keystroke echo of ``dd bs=1`` on a PTY of this machine (no sandbox), typed in alternating blocks:
straight into the PTY (as the web tier types into a lent PTY), and through a minimal relay process
over mutual TLS on TCP to an address of this machine, with the agents' own TLS settings
(:mod:`sandbox.wire.tls`). The relay is as lean as a relay gets: blocking reads and writes, no
event loop, no framing, no replay; a second one is as lean on asyncio's event loop, the loop the
agent runs. What they add is the price of the hop itself on this machine (a TCP connection each
way, one process more to wake, TLS records); what the agent adds beyond it (bench/remote.py) is the
agent's own doing.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pty
import select
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from sandbox.wire import tls

BLOCK = 50  # keystrokes typed one way before switching to the other
Way = tuple[Callable[[], object], Callable[[], bytes]]  # send a keystroke; read its echo
RELAYS = ("relay", "relay_loop")  # blocking; on asyncio's event loop, as the agent runs


def relay_floor(tls_dir: Path, host: str, keystrokes: int) -> dict[str, list[float]]:
    """Echo latencies (seconds) of ``keystrokes`` keystrokes each way: ``pty`` straight into the PTY;
    ``relay`` through the minimal blocking TLS relay and ``relay_loop`` through the minimal relay on
    asyncio's event loop, each listening on ``host`` (an address of this machine that the agent's
    certificate in ``tls_dir`` names; the site's certificate is there too)."""
    pids: list[int] = []
    direct_pid, direct_fd = _dd_on_pty(keystrokes)
    pids.append(direct_pid)
    ways: dict[str, Way] = {"pty": (lambda: os.write(direct_fd, b"x"), lambda: os.read(direct_fd, 1))}
    connections = []
    try:
        for name in RELAYS:
            connection = _relayed(tls_dir, host, keystrokes, name == "relay_loop", pids, direct_fd)
            connections.append(connection)
            ways[name] = (functools.partial(connection.sendall, b"x"), functools.partial(connection.recv, 1))
        return _typed(ways, keystrokes)
    finally:
        for connection in connections:
            connection.close()
        os.close(direct_fd)
        for pid in pids:
            os.waitpid(pid, 0)


def _relayed(tls_dir: Path, host: str, keystrokes: int, on_loop: bool, pids: list[int], keep_out: int) -> ssl.SSLSocket:
    """A new ``dd`` on a PTY behind a new relay process (its pids appended to ``pids``): the site's
    end of the relay's TLS connection. ``keep_out``: a descriptor the relay closes."""
    dd_pid, fd = _dd_on_pty(keystrokes)
    pids.append(dd_pid)
    listener = socket.create_server((host, 0))
    relay = os.fork()
    if relay == 0:  # the relay: one connection, then exit
        os.close(keep_out)
        try:
            context = tls.server_context(tls_dir)
            asyncio.run(_relay_on_loop(listener, context, fd)) if on_loop else _relay(listener, context, fd)
        finally:
            os._exit(0)
    pids.append(relay)
    address = listener.getsockname()
    listener.close()
    os.close(fd)
    connection = tls.client_context(tls_dir).wrap_socket(socket.create_connection(address), server_hostname=host)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _typed(ways: dict[str, Way], keystrokes: int) -> dict[str, list[float]]:
    """Each way's echo latencies, typed in turn in blocks of BLOCK (the order turning each round)."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for start in range(0, keystrokes, BLOCK):
        order = list(ways) if start // BLOCK % 2 == 0 else list(ways)[::-1]
        for name in order:
            send, receive = ways[name]
            for _ in range(min(BLOCK, keystrokes - start)):
                started = time.perf_counter()
                send()
                echo = receive()
                samples[name].append(time.perf_counter() - started)
                if echo != b"x":
                    raise AssertionError(f"relay floor: expected the echo b'x' ({name}), got {echo!r}")
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


class _LoopRelay(asyncio.Protocol):
    """The relay on the event loop: what the connection brings is written to the PTY as it comes,
    what the PTY has is written to the connection as it becomes readable."""

    def __init__(self, fd: int, done: asyncio.Future[None]) -> None:
        self.fd = fd
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def data_received(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _readable(self) -> None:
        assert self.transport is not None
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # the shell is gone
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.transport.close()
            return
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _relay_on_loop(listener: socket.socket, context: ssl.SSLContext, fd: int) -> None:
    """:func:`_relay` on asyncio's event loop, as the agent relays a terminal."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    server = await loop.create_server(lambda: _LoopRelay(fd, done), sock=listener, ssl=context)
    await done
    server.close()
