"""Network escape attempts from a root shell inside a real sandbox, of each image (busybox, and docker
with its engine running, whose bridge and rules live in the sandbox's own network namespace). Each must fail.

Every sandbox has eth0 on the stack's bridge and a default route through the host. The walls
(nftables, see sandbox/network/namespaces.py) must keep it from the host's ports, from other sandboxes
and from every non-public range, metadata address included. Each test proves the wall itself
stopped the packet: a listener that is known to work receives nothing, and the wall's nft
counter goes up.

Traffic stays on this machine: "outside" addresses (the metadata address, a private LAN, a
public address) live in a network namespace the test creates and routes to, so even a broken
wall could not send a packet anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from playground.config import load
from sandbox import settings as host_settings
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from tests.security.conftest import Inside
from tests.stack import Terminal, forwarding_on
from tests.waiting import eventually

# Stand-ins for the world beyond the host, all inside the test's own namespace.
OUTSIDE = {
    "metadata": "169.254.169.254",  # cloud instance metadata (credentials): SSRF-to-cloud-takeover class
    "private": "192.168.77.1",  # the host's LAN: lateral movement into private networks
    "public": "198.51.100.7",  # "the internet": no egress unless PLAYGROUND_EGRESS is on
}


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def walls(inside: Inside) -> SandboxNetwork:
    return SandboxNetwork(NetworkConfig.from_settings(host_settings.load(inside.stack.env).network))


def gateway(inside: Inside) -> str:
    return str(walls(inside).config.gateway)


@contextmanager
def host_listener(address: str) -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on the host; yields its port and the peers that connected to it."""
    server = socket.create_server((address, 0))
    server.settimeout(0.2)
    peers: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            peers.append(peer[0])
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], peers
    finally:
        stop.set()
        thread.join()
        server.close()


@contextmanager
def outside_world(bridge: str) -> Iterator[str]:
    """A netns holding the OUTSIDE addresses, routed from the host (/32 routes), with forwarding on.

    Forwarding is turned on for packets from the sandboxes' ``bridge`` (and put back) so that only
    the walls can stop a packet: with it off, as on a fresh Debian host, the kernel would drop
    forwarded packets before any wall saw them. The host-wide ``net.ipv4.ip_forward`` is not touched.
    """
    name = f"pgout{os.getpid()}"  # named for the test process: two runs side by side do not share it
    host_end, peer_end = f"{name}h", f"{name}p"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", peer_end, "netns", name)
        sh("ip", "addr", "add", "192.0.0.9/32", "dev", host_end)  # a host address for the replies
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "link", "set", peer_end, "up")
        for address in OUTSIDE.values():
            sh("ip", "-n", name, "addr", "add", f"{address}/32", "dev", peer_end)
            sh("ip", "route", "add", f"{address}/32", "dev", host_end)
        sh("ip", "-n", name, "route", "add", "192.0.0.9/32", "dev", peer_end)
        sh("ip", "-n", name, "route", "add", "default", "via", "192.0.0.9", "dev", peer_end, "onlink")
        with forwarding_on(bridge):
            yield name
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)  # takes its routes with it
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextmanager
def listener_in(netns: str, address: str, port: int) -> Iterator[Path]:
    """A one-shot TCP listener inside ``netns``; yields a file that gets a line per connection."""
    log = Path(f"/tmp/{netns}-{port}.log")
    log.write_text("")
    code = (
        "import socket,sys\n"
        f"s=socket.create_server(('{address}',{port}))\n"
        "while True:\n"
        " c,p=s.accept(); open(sys.argv[1],'a').write(p[0]+'\\n'); c.close()\n"
    )
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "python3", "-c", code, str(log)])
    try:
        eventually(
            lambda: sh("ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}").strip(),
            f"a listener on {address}:{port} in {netns}",
            timeout=5,
        )
        yield log
    finally:
        proc.kill()
        proc.wait()
        log.unlink(missing_ok=True)


async def connect(inside: Inside, address: str, port: int) -> str:
    """Try a TCP connection from the sandbox (busybox's nc, which both images have); returns
    "connected" or nc's complaint."""
    out = await inside.sh(
        f"busybox nc -w 2 {address} {port} </dev/null >/dev/null 2>/tmp/nc.err && echo connected; cat /tmp/nc.err",
        timeout=20,
    )
    return out.strip() or "no answer"


# The interfaces a sandbox sees (its own netns's sysfs: no host interface shows): eth0 and loopback,
# and in a docker sandbox its engine's bridge, made inside the sandbox's network namespace.
INTERFACES = {"busybox": ["eth0", "lo"], "docker": ["docker0", "eth0", "lo"]}


async def test_the_sandbox_has_its_own_eth0_with_an_address_and_a_route_through_the_host(inside: Inside) -> None:
    config = walls(inside).config
    interfaces = (await inside.sh("ls /sys/class/net")).split()
    assert interfaces == INTERFACES[inside.image]
    address = (await inside.sh("ip -4 -o addr show eth0")).split()[3]
    assert ipaddress.IPv4Interface(address).ip in config.subnet
    assert f"default via {config.gateway}" in await inside.sh("ip route")
    assert "10." in (await inside.sh("cat /etc/hosts"))  # the hostname resolves to its own address


@pytest.mark.parametrize("where", ["gateway", "loopback"])
async def test_no_host_port_answers_a_sandbox(inside: Inside, where: str) -> None:
    # Class: a sandbox reaching services the host exposes (sshd, databases, the web tier, Redis).
    address = gateway(inside) if where == "gateway" else "127.0.0.1"
    with host_listener("0.0.0.0") as (port, peers):
        with socket.create_connection((gateway(inside), port), timeout=2):
            pass  # the listener answers on the gateway address
        eventually(lambda: peers, "the listener's record of the host's own connection")
        peers.clear()
        before = walls(inside).counters()["to_host"]
        assert await connect(inside, address, port) != "connected"
        assert peers == []
        if where == "gateway":
            assert walls(inside).counters()["to_host"] > before  # the wall dropped it


@pytest.mark.parametrize("what", ["redis", "web", "agent"])
async def test_the_hosts_own_services_are_unreachable(inside: Inside, what: str) -> None:
    # Class: lateral movement to the control plane (Redis holds the task queue; the agent is root).
    cfg = load(inside.stack.env)
    if what == "agent":
        assert "No such file" in await inside.sh(f"ls {cfg.agent_socket} 2>&1")
        return
    port = int(cfg.redis_url.rsplit(":", 1)[1].split("/")[0]) if what == "redis" else cfg.port
    socket.create_connection(("127.0.0.1", port), timeout=1).close()  # it runs, on the host
    for address in (gateway(inside), "127.0.0.1"):
        out = await inside.sh(f"echo PING | busybox nc -w 2 {address} {port} 2>&1; echo rc=$?", timeout=20)
        assert "PONG" not in out
        assert "HTTP" not in out
        assert "rc=1" in out


@pytest.mark.parametrize("target", sorted(OUTSIDE))
async def test_nothing_beyond_the_host_is_reachable_with_egress_off(inside: Inside, target: str) -> None:
    address = OUTSIDE[target]
    with outside_world(walls(inside).config.bridge) as netns, listener_in(netns, address, 80) as log:
        with socket.create_connection((address, 80), timeout=2):
            pass  # the host reaches it: only the walls stand between it and the sandbox
        eventually(log.read_text, "the listener's record of the host's own connection")
        log.write_text("")
        before = walls(inside).counters()["egress_off"]
        assert await connect(inside, address, 80) != "connected"
        assert log.read_text() == ""
        assert walls(inside).counters()["egress_off"] > before


async def test_another_sessions_sandbox_is_invisible_and_unreachable(inside: Inside) -> None:
    # Class: attacking or snooping on another visitor's sandbox.
    other = inside.stack.start_session()
    neighbour = await Terminal.open(inside.stack.terminal_url(other))
    try:
        await neighbour.expect("# ", timeout=20)
        address = (await neighbour.run("ip -4 -o addr show eth0")).split()[3].split("/")[0]
        await neighbour.type("nc -ll -p 8080 -e echo hello-from-neighbour &\n")
        assert "hello-from-neighbour" in await neighbour.run("sleep 0.3; nc -w 2 127.0.0.1 8080 </dev/null")
        with socket.create_connection((address, 8080), timeout=2) as conn:  # the host may reach in
            assert b"hello-from-neighbour" in conn.recv(100)
        assert await inside.foreign_processes() == set()  # not the neighbour's nc, for one
        assert (await inside.sh("hostname")).strip() == "node1"
        before = walls(inside).counters()["to_sandbox"]
        assert await connect(inside, address, 8080) != "connected"  # routed through the host (eth0 is a /32)
        assert walls(inside).counters()["to_sandbox"] > before  # and dropped there
        # Root inside owns its network (CAP_NET_ADMIN there): putting the neighbour on-link, round
        # the host, is allowed inside and stopped on the bridge (isolated ports: ARP gets no answer).
        routed = await inside.sh(f"ip route add {address}/32 dev eth0 2>&1; echo rc=$?")
        assert "rc=0" in routed
        assert await connect(inside, address, 8080) != "connected"
    finally:
        await neighbour.close()
        inside.stack.end_session(other)
