"""Root with CAP_NET_ADMIN in its own netns still cannot be anyone else on the bridge.

Root inside a sandbox may own its network namespace, so it can change eth0's address and MAC,
add routes and send any frame from a packet socket. These tests do exactly that from inside
real sandbox networks (``SandboxNetwork`` with a prefix and a subnet of their own), as root in
the netns (``ip netns exec``, which holds CAP_NET_ADMIN and CAP_NET_RAW there), and check that
each bridge port stays pinned to its sandbox's address and MAC: the host's neighbour table and
the bridge's forwarding table keep the truth, the host and the neighbour hear nothing, and the
pinning rule's nft counter rises. Traffic goes only to the test's own bridge and namespaces.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.network.namespaces import NetworkConfig, NetworkError, SandboxNetwork
from tests.integration.test_network import connect_from, host_connect, netns_listener, sh, system_leftovers

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = pytest.mark.alongside

PREFIX = f"pgp{os.getpid() % 10000}"
SUBNET = f"10.252.{os.getpid() % 250}.0/24"
BROADCAST = "ff:ff:ff:ff:ff:ff"
# IEEE link-local MACs, which the bridge does not forward but hands to the host's stack on the
# port: LLDP with no bridge netfilter hook at all, 802.1X through the bridge's input hook only.
LLDP, PAE = "01:80:c2:00:00:0e", "01:80:c2:00:00:03"
PINNING_DROPS = ("unpinned_ipv4", "unpinned_arp", "not_ipv4_or_arp")

# Run inside a netns: send each frame (hex) out of eth0 from a packet socket, argv[1] rounds 0.25 s apart.
SEND_FRAMES = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for _ in range(int(sys.argv[1])):
    for frame in sys.argv[2:]:
        s.send(bytes.fromhex(frame))
    time.sleep(0.25)
"""


@dataclass(frozen=True)
class Sandbox:
    """One sandbox network as the host sees it."""

    netns: str
    port: str  # the host end of its veth, a port of the bridge
    address: str
    mac: str


# -- frames ------------------------------------------------------------------------------------
def ethernet(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return (
        bytes.fromhex(dst.replace(":", ""))
        + bytes.fromhex(src.replace(":", ""))
        + struct.pack("!H", ethertype)
        + payload
    )


def arp(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str) -> bytes:
    sha, tha = (bytes.fromhex(m.replace(":", "")) for m in (sender_mac, target_mac))
    spa, tpa = (ipaddress.IPv4Address(a).packed for a in (sender_ip, target_ip))
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, spa, tha, tpa)


def udp_in_ipv4(src: str, dst: str, port: int) -> bytes:
    datagram = struct.pack("!HHHH", 40000, port, 8 + 5, 0) + b"hello"  # checksum 0: none, allowed in IPv4
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(datagram), 1, 0x4000, 64, 17, 0,
        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    )  # fmt: skip
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    checksum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
    return header[:10] + struct.pack("!H", checksum) + header[12:] + datagram


def udp_in_ipv6(port: int) -> bytes:
    datagram = struct.pack("!HHHH", 40000, port, 8, 0)
    fe80, all_nodes = ipaddress.IPv6Address("fe80::1").packed, ipaddress.IPv6Address("ff02::1").packed
    return struct.pack("!IHBB16s16s", 6 << 28, len(datagram), 17, 64, fe80, all_nodes) + datagram


def send_frames(sandbox: Sandbox, *frames: bytes, rounds: int = 1) -> None:
    sh("ip", "netns", "exec", sandbox.netns, sys.executable, "-c", SEND_FRAMES, str(rounds), *(f.hex() for f in frames))


# -- what the host and the sandboxes believe ------------------------------------------------
def mac_of(netns: str) -> str:
    return str(json.loads(sh("ip", "-n", netns, "-j", "link", "show", "eth0"))[0]["address"])


def host_neighbour(bridge: str, address: str) -> str | None:
    """The MAC the host's neighbour table gives ``address`` on ``bridge``, or None."""
    entries = json.loads(sh("ip", "-j", "neigh", "show", "to", address, "dev", bridge) or "[]")
    return next((str(e["lladdr"]) for e in entries if "lladdr" in e), None)


def forwarding_macs(bridge: str, port: str) -> set[str]:
    """The MACs the bridge forwards to ``port`` (learned or static), from ``bridge fdb``."""
    entries = json.loads(sh("bridge", "-j", "fdb", "show", "br", bridge))
    return {e["mac"] for e in entries if e.get("ifname") == port and "permanent" not in e.get("state", "")}


def bridge_mac(net: SandboxNetwork) -> str:
    return Path(f"/sys/class/net/{net.config.bridge}/address").read_text().strip()


def pinning_drops(net: SandboxNetwork) -> int:
    counters = net.counters()
    return sum(counters.get(name, 0) for name in PINNING_DROPS)


@contextmanager
def host_udp(address: str) -> Iterator[tuple[int, socket.socket]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((address, 0))
        server.settimeout(0.5)
        yield server.getsockname()[1], server


def heard(server: socket.socket) -> list[bytes]:
    got = []
    try:
        while True:
            got.append(server.recv(100))
    except TimeoutError:
        return got


def nothing_reaches_the_host(net: SandboxNetwork, sandbox: Sandbox, mac: str, address: str, to: list[str]) -> None:
    """``sandbox`` tries the host: a TCP connection to the gateway (its kernel first asks the gateway's
    MAC by ARP), then, twice, a UDP datagram from ``mac`` and ``address`` to a socket on the gateway,
    in a frame to each MAC of ``to``; the socket hears nothing."""
    gateway = str(net.config.gateway)
    with host_udp(gateway) as (port, server):
        assert connect_from(sandbox.netns, gateway, port) != "connected"
        datagram = udp_in_ipv4(address, gateway, port)
        send_frames(sandbox, *(ethernet(dst, mac, 0x0800, datagram) for dst in to), rounds=2)
        assert heard(server) == []


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
async def net() -> AsyncIterator[SandboxNetwork]:
    sandbox_net = SandboxNetwork(NetworkConfig.for_prefix(PREFIX, SUBNET))
    try:
        await sandbox_net.setup_host()
        await sandbox_net.reap(keep=[])  # what a killed earlier run with this pid left
        yield sandbox_net
    finally:
        await SandboxNetwork(sandbox_net.config).teardown_host()
    assert system_leftovers(PREFIX) == []
    for family in ("inet", "bridge"):
        assert sh("nft", "list", "tables", family).count(f" {PREFIX}\n") == 0


async def make(net: SandboxNetwork, sandbox_id: str) -> Sandbox:
    netns = (await net.create(sandbox_id)).name
    return Sandbox(netns, net.config.veth_name(sandbox_id), str(net.address_of(sandbox_id)), mac_of(netns))


@pytest.fixture
async def pair(net: SandboxNetwork) -> tuple[Sandbox, Sandbox]:
    """(attacker, neighbour), the neighbour with a TCP listener on 8000 that the host reached once."""
    attacker, neighbour = await asyncio.gather(make(net, "attacker"), make(net, "neighbour"))
    return attacker, neighbour


@contextmanager
def neighbour_known_to_the_host(net: SandboxNetwork, neighbour: Sandbox) -> Iterator[None]:
    """A listener in the neighbour that the host has just reached, so the host's neighbour table and
    the bridge's forwarding table hold the neighbour's MAC; waits out the ARP lock time (1 s), after
    which the kernel lets an ARP message change the entry."""
    with netns_listener(neighbour.netns, neighbour.address, 8000):
        assert host_connect(neighbour.address, 8000) == "connected"
        assert host_neighbour(net.config.bridge, neighbour.address) == neighbour.mac
        time.sleep(1.2)
        yield


def the_host_still_reaches_the_neighbour(net: SandboxNetwork, neighbour: Sandbox) -> None:
    assert host_neighbour(net.config.bridge, neighbour.address) == neighbour.mac
    assert neighbour.mac in forwarding_macs(net.config.bridge, neighbour.port)
    assert host_connect(neighbour.address, 8000) == "connected"


# -- the attempts ----------------------------------------------------------------------------
async def test_each_port_is_pinned_to_its_address_and_a_mac_made_from_it(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox]
) -> None:
    pinned = json.loads(sh("nft", "-j", "list", "set", "bridge", PREFIX, "ports"))
    elements = [e["elem"]["val"]["concat"] for s in pinned["nftables"] if "set" in s for e in s["set"]["elem"]]
    for sandbox in pair:
        address = ipaddress.IPv4Address(sandbox.address)
        assert sandbox.mac == "06:70:" + ":".join(f"{b:02x}" for b in address.packed)
        assert [sandbox.port, sandbox.mac, sandbox.address] in elements
        port = json.loads(sh("bridge", "-j", "-d", "link", "show", "dev", sandbox.port))[0]
        assert (port["learning"], port["flood"], port["isolated"]) == (False, False, True)
        assert forwarding_macs(net.config.bridge, sandbox.port) == {sandbox.mac}
    await net.destroy("attacker")
    pinned = sh("nft", "list", "set", "bridge", PREFIX, "ports")
    assert pair[0].port not in pinned
    assert pair[1].port in pinned


async def test_ordinary_traffic_flows_from_the_pinned_mac_and_address(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox]
) -> None:
    drops = pinning_drops(net)
    for sandbox in pair:
        with netns_listener(sandbox.netns, sandbox.address, 8000):
            assert host_connect(sandbox.address, 8000) == "connected"
        assert host_neighbour(net.config.bridge, sandbox.address) == sandbox.mac
        gateway = json.loads(sh("ip", "-n", sandbox.netns, "-j", "neigh", "show", str(net.config.gateway)))
        assert [g["lladdr"] for g in gateway] == [bridge_mac(net)]
    assert pinning_drops(net) == drops


async def test_a_sandbox_that_takes_its_neighbours_address_reaches_neither_the_host_nor_the_neighbour(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox]
) -> None:
    attacker, neighbour = pair
    gateway = str(net.config.gateway)
    with neighbour_known_to_the_host(net, neighbour), netns_listener(attacker.netns, "0.0.0.0", 8001):
        drops = pinning_drops(net)
        sh("ip", "-n", attacker.netns, "addr", "flush", "dev", "eth0")
        sh("ip", "-n", attacker.netns, "addr", "add", f"{neighbour.address}/24", "dev", "eth0")
        sh("ip", "-n", attacker.netns, "route", "add", "default", "via", gateway)
        # Its ARP request for the gateway says "tell <the neighbour's address> at <my MAC>".
        nothing_reaches_the_host(net, attacker, attacker.mac, neighbour.address, [BROADCAST])
        the_host_still_reaches_the_neighbour(net, neighbour)
        assert host_connect(neighbour.address, 8001) == "ConnectionRefusedError"  # the neighbour answered, not it
        assert pinning_drops(net) > drops


@pytest.mark.parametrize("new_mac", ["fresh", "neighbours"])
async def test_a_sandbox_that_changes_its_mac_is_not_learned_on_its_port(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox], new_mac: str
) -> None:
    attacker, neighbour = pair
    mac = "0e:12:34:56:78:9a" if new_mac == "fresh" else neighbour.mac
    with neighbour_known_to_the_host(net, neighbour):
        drops = pinning_drops(net)
        sh("ip", "-n", attacker.netns, "link", "set", "eth0", "address", mac)
        # Also to link-local MACs, which skip the bridge's prerouting hook.
        nothing_reaches_the_host(net, attacker, mac, attacker.address, [LLDP, PAE, BROADCAST])
        assert mac not in forwarding_macs(net.config.bridge, attacker.port)
        the_host_still_reaches_the_neighbour(net, neighbour)
        assert pinning_drops(net) > drops


@pytest.mark.parametrize("claim", ["neighbour", "gateway"])
async def test_forged_arp_changes_no_neighbour_table(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox], claim: str
) -> None:
    attacker, neighbour = pair
    gateway = str(net.config.gateway)
    host_mac = bridge_mac(net)
    claimed = neighbour.address if claim == "neighbour" else gateway
    with neighbour_known_to_the_host(net, neighbour):
        assert connect_from(neighbour.netns, gateway, 9) != "connected"  # the neighbour now knows the gateway's MAC
        drops = pinning_drops(net)
        frames = [
            # Gratuitous reply and request from the attacker's own MAC, claiming the address.
            ethernet(BROADCAST, attacker.mac, 0x0806, arp(2, attacker.mac, claimed, BROADCAST, claimed)),
            ethernet(BROADCAST, attacker.mac, 0x0806, arp(1, attacker.mac, claimed, "00:00:00:00:00:00", claimed)),
            # A reply straight to the host's MAC, and one whose frame and message disagree on the sender.
            ethernet(host_mac, attacker.mac, 0x0806, arp(2, attacker.mac, claimed, host_mac, gateway)),
            ethernet(host_mac, attacker.mac, 0x0806, arp(2, neighbour.mac, attacker.address, host_mac, gateway)),
        ]
        send_frames(attacker, *frames, rounds=4)
        assert host_neighbour(net.config.bridge, attacker.address) in (None, attacker.mac)
        seen_by_neighbour = json.loads(sh("ip", "-n", neighbour.netns, "-j", "neigh", "show", gateway))
        assert [entry["lladdr"] for entry in seen_by_neighbour] == [host_mac]
        the_host_still_reaches_the_neighbour(net, neighbour)
        assert pinning_drops(net) >= drops + 4 * len(frames)


@pytest.mark.parametrize("frame", ["ipv6", "vlan"])
async def test_ipv6_and_vlan_tagged_frames_are_dropped_at_the_port(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox], frame: str
) -> None:
    attacker = pair[0]
    gateway = str(net.config.gateway)
    host_mac = bridge_mac(net)
    with host_udp(gateway) as (port, server):
        ipv4 = udp_in_ipv4(attacker.address, gateway, port)  # from the pinned address and MAC
        payload = {
            "ipv6": ethernet("33:33:00:00:00:01", attacker.mac, 0x86DD, udp_in_ipv6(port)),
            "vlan": ethernet(host_mac, attacker.mac, 0x8100, struct.pack("!HH", 7, 0x0800) + ipv4),
        }[frame]
        dropped = net.counters().get("not_ipv4_or_arp", 0)
        send_frames(attacker, payload, rounds=3)
        assert net.counters().get("not_ipv4_or_arp", 0) >= dropped + 3
        assert heard(server) == []


@pytest.mark.parametrize("destination", [LLDP, PAE])
async def test_a_packet_sent_to_a_link_local_mac_does_not_slip_past_the_walls_to_the_host(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox], destination: str
) -> None:
    # The bridge hands such a frame to the host's stack on the port itself, not on the bridge.
    attacker = pair[0]
    gateway = str(net.config.gateway)
    with host_udp(gateway) as (port, server):
        dropped = net.counters().get("unbridged", 0)
        send_frames(
            attacker,
            ethernet(destination, attacker.mac, 0x0800, udp_in_ipv4(attacker.address, gateway, port)),
            rounds=3,
        )
        assert heard(server) == []
        assert net.counters().get("unbridged", 0) >= dropped + 3


async def test_a_create_that_cannot_pin_its_port_fails_and_leaves_nothing_behind(net: SandboxNetwork) -> None:
    sh("nft", "delete", "table", "bridge", PREFIX)  # no set to pin the port in
    with pytest.raises(NetworkError, match="setup_host"):
        await net.create("unpinned")
    assert net.leftovers() == {"netns": [], "veth": [], "addresses": []}
    await net.setup_host()  # puts the table back
    await net.create("unpinned")
    assert "unpinned" in sh("nft", "list", "set", "bridge", PREFIX, "ports")


async def test_the_pins_survive_an_agent_restart_and_go_with_their_networks(
    net: SandboxNetwork, pair: tuple[Sandbox, Sandbox]
) -> None:
    attacker, neighbour = pair
    restarted = SandboxNetwork(net.config)
    await restarted.setup_host()  # reloads both tables, keeping the addresses and so the pins
    pinned = sh("nft", "list", "set", "bridge", PREFIX, "ports")
    assert attacker.port in pinned and neighbour.port in pinned
    with netns_listener(neighbour.netns, neighbour.address, 8000):
        assert host_connect(neighbour.address, 8000) == "connected"
    await restarted.reap(keep=["neighbour"])
    pinned = sh("nft", "list", "set", "bridge", PREFIX, "ports")
    assert attacker.port not in pinned and neighbour.port in pinned
