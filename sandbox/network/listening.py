"""The TCP ports a sandbox listens on, asked of the kernel in the sandbox's network namespace.

:class:`Listeners` asks by ``sock_diag`` netlink (what ``ss -lt`` uses) for the listening sockets
alone: the kernel walks its table of listening sockets, not the established ones, so an answer
takes about 0.1 ms. Its netlink socket for each namespace is made once, by a short-lived thread
that enters the namespace (``setns`` moves only the calling thread), and belongs to that
namespace from then on. Where the kernel has no ``sock_diag`` for TCP (its ``tcp_diag`` module
not loaded), the namespace's ``/proc/<pid>/net/tcp`` and ``tcp6`` are read instead: the same
answer, but the kernel walks every socket bucket of the host for it (about 5 ms per file here).

Loopback listeners (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) are left out: nothing outside the
sandbox reaches them.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import socket
import struct
import threading
from pathlib import Path

log = logging.getLogger("sandbox.network.listening")

LISTEN = "0A"  # TCP_LISTEN in the /proc tables
TCP_LISTEN = 10
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
DIAG_REQUEST = struct.Struct("=BBBBI48x")  # inet_diag_req_v2: family, protocol, ext, pad, states, sockid
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


class Listeners:
    """Answers which TCP ports listen in a network namespace, keeping a netlink socket per namespace."""

    def __init__(self) -> None:
        self._sockets: dict[Path, socket.socket] = {}

    def ports(self, netns: Path, pid: int | None) -> list[int]:
        """The sorted TCP ports listening in ``netns`` (pinned at that path) on an address other
        machines can reach; from ``/proc/<pid>/net`` (``pid`` a process in it) if netlink cannot
        answer; [] if neither can."""
        try:
            found = self._ask(netns)
        except OSError as exc:
            self.forget(netns)
            if pid is None:
                return []
            log.debug("sock_diag in %s failed (%s); reading /proc/%d/net/tcp", netns, exc, pid)
            found = proc_listeners(pid)
        return sorted(found)

    def keep_only(self, netns: set[Path]) -> None:
        """Close the sockets of every namespace but ``netns`` (a socket keeps its namespace alive)."""
        for path in set(self._sockets) - netns:
            self.forget(path)

    def forget(self, netns: Path) -> None:
        """Close the socket of ``netns``, if there is one."""
        sock = self._sockets.pop(netns, None)
        if sock is not None:
            sock.close()

    def _ask(self, netns: Path) -> set[int]:
        sock = self._sockets.get(netns)
        if sock is None:
            sock = self._sockets[netns] = socket_in(netns)
        return dump_listeners(sock, socket.AF_INET) | dump_listeners(sock, socket.AF_INET6)


def socket_in(netns: Path) -> socket.socket:
    """A ``sock_diag`` netlink socket of the network namespace pinned at ``netns``, made by a thread
    that enters it and goes back; OSError if it cannot."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def make() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(target)
                    try:
                        made.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG))
                    finally:
                        _setns(own)
                finally:
                    os.close(target)
            finally:
                os.close(own)
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=make, name="sock-diag")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    made[0].settimeout(1.0)
    return made[0]


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def dump_listeners(sock: socket.socket, family: int) -> set[int]:
    """The ports of ``family``'s listening TCP sockets not bound to loopback, by a sock_diag dump."""
    request = DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
    sock.send(
        NLMSG_HEADER.pack(NLMSG_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        + request
    )
    ports: set[int] = set()
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset + NLMSG_HEADER.size <= len(data):
            length, kind, _, _, _ = NLMSG_HEADER.unpack_from(data, offset)
            if kind == NLMSG_DONE:
                return ports
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + NLMSG_HEADER.size)
                raise OSError(-code, f"sock_diag: {os.strerror(-code)}")
            ports |= _diag_port(data[offset + NLMSG_HEADER.size : offset + length])
            offset += (length + 3) & ~3
        if not data:
            return ports


def _diag_port(message: bytes) -> set[int]:
    """The port of one inet_diag_msg (family, state, timer, retrans, then the socket's id: source
    port and destination port in network order, source and destination addresses), unless its
    address is loopback."""
    family = message[0]
    (port,) = struct.unpack_from("!H", message, 4)
    raw = message[8 : 8 + (4 if family == socket.AF_INET else 16)]
    return set() if unmapped(ipaddress.ip_address(raw)).is_loopback else {port}


def proc_listeners(pid: int) -> set[int]:
    """The ports listening in ``pid``'s network namespace on non-loopback addresses, from its
    ``/proc/<pid>/net/tcp`` and ``tcp6``; empty when the process is gone."""
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:
            continue
        ports |= reachable_listeners(text)
    return ports


def reachable_listeners(table: str) -> set[int]:
    """The ports of the LISTEN sockets of a ``/proc/net/tcp`` or ``tcp6`` table not bound to loopback."""
    ports = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN:
            continue
        address, _, port = fields[1].partition(":")
        try:
            if not parse_address(address).is_loopback:
                ports.add(int(port, 16))
        except ValueError:
            continue
    return ports


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as the kernel's socket tables print it (v4-mapped IPv6 addresses as IPv4).

    The kernel prints each 32-bit word of the address as a number read in the host's byte order;
    packing that number back in the host's order gives the address's bytes."""
    if len(text) not in (8, 32):
        raise ValueError(f"{text!r} is not an address of a socket table")
    packed = b"".join(struct.pack("=I", int(text[i : i + 8], 16)) for i in range(0, len(text), 8))
    return unmapped(ipaddress.ip_address(packed))


def unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A v4-mapped IPv6 address (``::ffff:a.b.c.d``) as the IPv4 address it maps; any other as it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
