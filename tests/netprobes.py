"""Probes run inside network namespaces by the host's Python (as root there): a TCP connect, a
TCP listener, UDP and an ICMP echo, for the tests of the walls between sandboxes. What they send
leaves by the namespace's eth0 with its address, as a sandbox's own programs' packets do (busybox's
nc has no UDP and its ping needs CAP_NET_RAW, which a sandbox's root lacks)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Run inside a netns: try one TCP connect with a 1 s timeout (from the source address argv[3], if
# given), print what happened.
CONNECT = """
import socket, sys
try:
    source = (sys.argv[3], 0) if len(sys.argv) > 3 else None
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1, source_address=source).close()
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(type(exc).__name__)
"""

# Run inside a netns: listen on argv[1]:argv[2], say "ready", accept for at most 20 s.
LISTEN = """
import socket, sys, time
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(0.5)
print("ready", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        server.accept()[0].close()
    except socket.timeout:
        pass
"""


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30).stdout


def connect_from(netns: str, host: str, port: int, source: str = "") -> str:
    """What a TCP connect to ``host:port`` from ``netns`` (from its address ``source``) gives: "connected",
    "timeout" or the error's name."""
    extra = (source,) if source else ()
    return sh("ip", "netns", "exec", netns, sys.executable, "-c", CONNECT, host, str(port), *extra).strip()


@contextmanager
def netns_listener(netns: str, address: str, port: int, script: str = LISTEN) -> Iterator[None]:
    """A TCP listener (or the server ``script`` runs) inside ``netns`` on ``address:port``."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, address, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


# Run inside a netns: one UDP datagram to argv[1]:argv[2], then wait 1 s for the echo.
UDP_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("timeout")
"""

# Run inside a netns: echo UDP datagrams on argv[1]:argv[2] for at most 20 s, say "ready" first.
UDP_ECHO = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.5)
print("ready", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        data, peer = s.recvfrom(100)
        s.sendto(b"echo-" + data, peer)
    except socket.timeout:
        pass
"""


def udp_echo(netns: str, address: str, port: int) -> contextlib.AbstractContextManager[None]:
    """A UDP echo server inside ``netns`` on ``address:port``."""
    return netns_listener(netns, address, port, UDP_ECHO)


def udp_from(netns: str, host: str, port: int) -> str:
    return sh("ip", "netns", "exec", netns, sys.executable, "-c", UDP_SEND, host, str(port)).strip()


# Run inside a netns: one ICMP echo request to argv[1] (an unprivileged ping socket), print the reply's type.
PING = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.settimeout(1)
s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"ping", (sys.argv[1], 0))
try:
    print("echo reply" if s.recv(100)[0] == 0 else "other")
except socket.timeout:
    print("timeout")
"""


def ping_from(netns: str, host: str) -> bool:
    return sh("ip", "netns", "exec", netns, sys.executable, "-c", PING, host).strip() == "echo reply"
