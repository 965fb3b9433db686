"""The TCP ports a sandbox listens on, read from the kernel's socket tables of its network namespace.

``/proc/<pid>/net/tcp`` and ``tcp6`` list the sockets of the network namespace ``pid`` is in:
one line per socket, its local address as hex (the IPv4 address, or the four 32-bit words of the
IPv6 one, each in the host's byte order) and port, and its state (``0A`` is LISTEN). Reading them
is a few file reads, no process: cheap enough to ask about every second.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

LISTEN = "0A"


def listening_ports(pid: int) -> list[int]:
    """The sorted TCP ports listening in ``pid``'s network namespace on an address another machine
    can reach (not 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104); [] when the process is gone."""
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:
            continue
        ports |= reachable_listeners(text)
    return sorted(ports)


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
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
