"""Root inside a real sandbox owns its network (CAP_NET_ADMIN there) and still cannot be anyone else.

Root inside may change eth0's address and MAC and add routes (``ip``, and busybox's ``ifconfig``), as an inner
Docker engine must. These tests do that from a root shell in a sandbox of a real stack (of each image:
busybox, and docker with its engine running, whose root also has CAP_NET_RAW), with a second session's
sandbox as the neighbour, and show that the host's walls and the pinning of each bridge
port to its sandbox's address and MAC (``sandbox/network/ports.py``) hold: the attacker reaches
neither the neighbour nor any host port, the host's neighbour table and the bridge's forwarding
table keep the truth, the pinning counters rise, the neighbour keeps working throughout, and the
attacker works again once it puts its own address and MAC back. ``tests/security/
test_port_pinning.py`` tries the same, and forged frames, as host root in networks it builds.

"The host's other addresses" are stood in for by an address on an interface the test adds to the
host, so the sandbox's packets go only to the host itself.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.security.conftest import Inside
from tests.security.test_network_walls import connect, gateway, host_listener, sh, walls
from tests.security.test_port_pinning import host_neighbour, pinning_drops
from tests.stack import Terminal

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = pytest.mark.alongside

FRESH_MAC = "0e:12:34:56:78:9a"  # locally administered, no sandbox's
# Busybox's "ip link set eth0 address" first asks a packet socket for the hardware type, which
# needs CAP_NET_RAW (not granted but with the docker profile); its ifconfig sets the MAC with
# SIOCSIFHWADDR, CAP_NET_ADMIN only. Busybox's applets (both images have busybox), so that both run the same.
SET_MAC = "busybox ifconfig eth0 hw ether"


@dataclass(frozen=True)
class Place:
    """Where a sandbox sits on the bridge: its address (with the subnet's length), MAC and port."""

    address: str
    prefixlen: int
    mac: str
    port: str  # the host end of its veth


def forwarding(bridge: str) -> dict[str, set[str]]:
    """The bridge's forwarding table: for each MAC, the ports it forwards that MAC to (from ``bridge fdb``)."""
    table: dict[str, set[str]] = {}
    for entry in json.loads(sh("bridge", "-j", "fdb", "show", "br", bridge)):
        if "permanent" not in entry.get("state", "") and "ifname" in entry:
            table.setdefault(entry["mac"], set()).add(entry["ifname"])
    return table


@contextmanager
def neighbour_table_watched(bridge: str) -> Iterator[Callable[[str], set[str]]]:
    """Watches the host's neighbour table on ``bridge`` (``ip monitor neigh``); yields a function
    giving every MAC an address was mapped to since. A wrong mapping can be short-lived (the real
    owner's kernel confirms its gateway entry by ARP within seconds, which corrects the host's),
    so looking at the table once would miss it."""
    with tempfile.TemporaryFile("w+") as log:
        monitor = subprocess.Popen(["ip", "monitor", "neigh", "dev", bridge], stdout=log, text=True)

        def macs_of(address: str) -> set[str]:
            log.seek(0)
            lines = [line.split() for line in log]
            return {words[words.index("lladdr") + 1] for words in lines if words[:1] == [address] and "lladdr" in words}

        try:
            yield macs_of
        finally:
            monitor.kill()
            monitor.wait()


async def place_of(terminal: Terminal) -> Place:
    """The sandbox's place now; its port is the host interface whose index its eth0 names as peer."""
    interface = ipaddress.IPv4Interface((await terminal.run("ip -4 -o addr show eth0")).split()[3])
    mac = (await terminal.run("cat /sys/class/net/eth0/address")).strip()
    peer = int(await terminal.run("cat /sys/class/net/eth0/iflink"))
    (port,) = [link["ifname"] for link in json.loads(sh("ip", "-j", "link", "show")) if link["ifindex"] == peer]
    return Place(str(interface.ip), interface.network.prefixlen, mac, port)


async def as_root_inside(inside: Inside, *commands: str) -> None:
    """Run ``commands`` in the sandbox one after the other; each must succeed."""
    out = await inside.sh(" && ".join(commands) + " && echo all-done", timeout=20)
    assert "all-done" in out, f"root inside could not run {commands}: {out}"


async def start_greeter(terminal: Terminal, name: str) -> None:
    """A listener on 8080 in the sandbox that greets each connection with "hello-from-<name>"."""
    await terminal.type(f"busybox nc -ll -p 8080 -e echo hello-from-{name} &\n")
    await terminal.run("sleep 0.3")


def greeting(address: str) -> str:
    """What the host hears from the listener on ``address``:8080 (the sandboxes' listeners greet)."""
    with socket.create_connection((address, 8080), timeout=3) as conn:
        return conn.recv(100).decode().strip()


@contextmanager
def host_address() -> Iterator[str]:
    """An address of the host on an interface of the test's own (a veth pair, both ends on the host
    and up: this kernel may have no dummy interfaces), not on the bridge."""
    name, address = f"pgx{os.getpid() % 100000}", f"198.18.{os.getpid() % 250}.1"
    subprocess.run(["ip", "link", "del", name], capture_output=True)  # what a killed earlier run left
    sh("ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    try:
        sh("ip", "addr", "add", f"{address}/32", "dev", name)
        sh("ip", "link", "set", f"{name}p", "up")
        sh("ip", "link", "set", name, "up")
        yield address
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


@dataclass
class Neighbour:
    terminal: Terminal
    place: Place


@pytest_asyncio.fixture
async def neighbour(inside: Inside) -> AsyncIterator[Neighbour]:
    """A second session's sandbox with a listener on 8080 that greets "hello-from-neighbour", which
    the host has just reached (so its neighbour table holds the neighbour's MAC) more than the
    kernel's ARP lock time (1 s) ago, after which an ARP message could change that entry."""
    session = inside.stack.start_session()
    terminal = await Terminal.open(inside.stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=20)
        place = await place_of(terminal)
        await start_greeter(terminal, "neighbour")
        assert greeting(place.address) == "hello-from-neighbour"
        assert host_neighbour(walls(inside).config.bridge, place.address) == place.mac
        time.sleep(1.2)
        yield Neighbour(terminal, place)
    finally:
        await terminal.close()
        inside.stack.end_session(session)


# What root inside does to its eth0 in each attack, given its own place, the neighbour's and the
# gateway. Where it keeps its own address it also routes the neighbour's address via the gateway
# (as its default route already does: eth0's address is a /32, nothing else is on-link).
ATTACKS = {
    # Impersonating a neighbour by address: its ARP requests then claim the neighbour's address.
    "the_neighbours_address": lambda me, them, gw: [
        "ip addr flush dev eth0",
        f"ip addr add {them.address}/{them.prefixlen} dev eth0",
        f"ip route add {gw} dev eth0 scope link",  # eth0's address is a /32: the gateway is on-link by route
        f"ip route add default via {gw}",
    ],
    # Taking over a neighbour's MAC, so that the bridge would forward its frames to the attacker.
    "the_neighbours_mac": lambda me, them, gw: [
        f"{SET_MAC} {them.mac}",
        f"ip route add {them.address}/32 via {gw}",
    ],
    # A MAC no port is pinned to, past the walls if the bridge learned it.
    "a_fresh_mac": lambda me, them, gw: [
        f"{SET_MAC} {FRESH_MAC}",
        f"ip route add {them.address}/32 via {gw}",
    ],
    # Both: a full impersonation of the neighbour on the bridge.
    "the_neighbours_address_and_mac": lambda me, them, gw: [
        f"{SET_MAC} {them.mac}",
        "ip addr flush dev eth0",
        f"ip addr add {them.address}/{them.prefixlen} dev eth0",
        f"ip route add {gw} dev eth0 scope link",  # eth0's address is a /32: the gateway is on-link by route
        f"ip route add default via {gw}",
    ],
}


def expected_after(commands: list[str]) -> list[str]:
    """What ``ip addr``, eth0's MAC and ``ip route`` show once ``commands`` ran: each address added,
    each MAC set and each route's destination."""
    shown = []
    for command in commands:
        words = command.split()
        if words[:3] in (["ip", "addr", "add"], ["ip", "route", "add"]):
            shown.append(words[3].removesuffix("/32"))
        elif command.startswith(SET_MAC):
            shown.append(words[-1])
    return shown


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_a_sandbox_that_takes_another_address_or_mac_reaches_nothing_and_recovers_when_it_puts_its_own_back(
    inside: Inside, neighbour: Neighbour, attack: str
) -> None:
    # Class: impersonating a neighbour on the bridge (address and MAC spoofing, ARP claims from
    # the kernel's own requests, routing around the ports' isolation) with CAP_NET_ADMIN inside.
    net, gw, them = walls(inside), gateway(inside), neighbour.place
    bridge = net.config.bridge
    me = await place_of(inside.terminal)
    await start_greeter(inside.terminal, "attacker")
    # Then it forgets its neighbours, so its kernel asks again by ARP from the new address and MAC.
    commands = [*ATTACKS[attack](me, them, gw), "ip neigh flush dev eth0"]
    with host_address() as other, host_listener("0.0.0.0") as (port, peers), neighbour_table_watched(bridge) as seen:
        for address in (gw, other):
            socket.create_connection((address, port), timeout=2).close()  # the listener answers there
        drops = pinning_drops(net)
        await as_root_inside(inside, *commands)  # root inside may do all of it
        shown = await inside.sh("ip -4 -o addr show eth0; cat /sys/class/net/eth0/address; ip route")
        assert all(what in shown for what in expected_after(commands)), shown

        time.sleep(0.5)  # the host's own connections above are done; only the sandbox's can come
        peers.clear()
        for address in (gw, other):
            assert await connect(inside, address, port) != "connected"
        if them.address not in shown:  # it kept its own address and routed the neighbour's via the gateway
            assert await connect(inside, them.address, 8080) != "connected"
        assert peers == []
        assert host_neighbour(bridge, them.address) == them.mac
        assert seen(them.address) <= {them.mac}  # not even for a moment another's
        table = forwarding(bridge)
        assert table[them.mac] == {them.port}
        assert {mac for mac, ports in table.items() if me.port in ports} == {me.mac}
        assert pinning_drops(net) > drops
        assert greeting(them.address) == "hello-from-neighbour"  # the neighbour, not the attacker, answers

    await as_root_inside(
        inside,
        f"{SET_MAC} {me.mac}",
        "ip addr flush dev eth0",
        f"ip addr add {me.address}/{me.prefixlen} dev eth0",
        f"ip route add {gw} dev eth0 scope link",  # eth0's address is a /32: the gateway is on-link by route
        f"ip route add default via {gw}",
    )
    assert greeting(me.address) == "hello-from-attacker"
    assert host_neighbour(bridge, me.address) == me.mac
    assert greeting(them.address) == "hello-from-neighbour"


async def test_a_sandbox_that_routes_another_host_address_onto_eth0_gets_no_arp_answer_for_it(
    inside: Inside,
) -> None:
    # Class: reconnaissance of the host's addresses by ARP on the bridge (the host answers only
    # for the gateway: net.ipv4.conf.<bridge>.arp_ignore=1).
    bridge, gw = walls(inside).config.bridge, gateway(inside)
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/arp_ignore").read_text().strip() == "1"
    with host_address() as other:
        await as_root_inside(inside, f"ip route add {other}/32 dev eth0")  # ask for it on the link itself
        assert await connect(inside, other, 80) != "connected"
        assert await connect(inside, gw, 80) != "connected"  # the walls drop it, but the gateway answers ARP
        entries = {line.split()[0]: line for line in (await inside.sh("ip neigh show dev eth0")).splitlines() if line}
        assert "lladdr" not in entries[other] and entries[other].split()[-1] in ("INCOMPLETE", "FAILED"), entries
        assert "lladdr" in entries[gw], entries
