"""Sandbox networks: a netns per sandbox behind a host bridge, and the nftables walls around it.

Runs as root against the real kernel, with a prefix and a subnet of its own (so it never
touches a running stack's bridge or rules). Traffic goes only to loopback, to the gateway
address of the test's own bridge and to listeners inside the test's own network namespaces.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.network import namespaces as network
from sandbox.network.listening import Listeners, proc_listeners
from sandbox.network.namespaces import NetworkConfig, NetworkError, SandboxNetwork
from sandbox.network.rules import peer_pairs
from sandbox.settings import load as load_config
from tests.netprobes import connect_from, netns_listener, ping_from, sh, udp_echo, udp_from

PREFIX = f"pgt{os.getpid() % 10000}"
SUBNET = f"10.250.{os.getpid() % 250}.0/24"
OTHER_PREFIX = f"pgu{os.getpid() % 10000}"


def host_connect(host: str, port: int) -> str:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__


@contextmanager
def host_listener(address: str) -> Iterator[int]:
    """A TCP listener on the host, bound to ``address``; yields its port."""
    server = socket.create_server((address, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def system_leftovers(prefix: str) -> list[str]:
    """Names of this prefix in `ip -o link` and `ip netns list`, straight from iproute2."""
    links = [line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").splitlines()]
    spaces = [line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()]
    return [n for n in links + spaces if n.startswith(prefix + "-")]


def table_exists(prefix: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", prefix], capture_output=True).returncode == 0


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


@pytest.fixture
async def net() -> AsyncIterator[SandboxNetwork]:
    sandbox_net = SandboxNetwork(NetworkConfig.for_prefix(PREFIX, SUBNET))
    try:
        await sandbox_net.setup_host()
        # What a killed earlier run left under this prefix (it comes from the pid, which a fresh
        # boot may hand out again): setup_host keeps sandboxes, as an agent restart must.
        await sandbox_net.reap(keep=[])
        yield sandbox_net
    finally:
        await SandboxNetwork(sandbox_net.config).teardown_host()
    assert system_leftovers(PREFIX) == []
    assert not table_exists(PREFIX)
    assert not link_exists(sandbox_net.config.bridge)


# -- configuration ---------------------------------------------------------------------------
def test_names_fit_the_kernels_limits_and_carry_the_prefix() -> None:
    config = NetworkConfig.for_prefix("abcdefgh", "10.250.0.0/24")
    veth, netns = config.veth_name("a" * 64), config.netns_name("a" * 64)
    assert len(veth) == 15
    assert veth.startswith("abcdefgh-")
    assert netns.startswith("abcdefgh-")
    assert config.bridge == "abcdefghbr0"
    assert config.veth_name("x1234567") != config.veth_name("x1234568")
    assert str(config.gateway) == "10.250.0.1"


def test_settings_come_from_the_environment_with_egress_off_by_default() -> None:
    config = NetworkConfig.from_settings(load_config({}).network)
    assert str(config.subnet) == "10.89.0.0/16"
    assert not config.egress
    assert config.bridge == "pgbr0"
    settings = {
        "PLAYGROUND_SANDBOX_SUBNET": "10.77.0.0/20",
        "PLAYGROUND_EGRESS": "true",
        "PLAYGROUND_NETWORK_NAME": "lab",
    }
    config = NetworkConfig.from_settings(load_config(settings).network)
    assert str(config.subnet) == "10.77.0.0/20"
    assert config.egress
    assert config.bridge == "labbr0"


def test_a_bad_prefix_or_subnet_is_refused_with_a_reason() -> None:
    with pytest.raises(NetworkError, match="prefix"):
        NetworkConfig.for_prefix("Bad-Prefix!", "10.250.0.0/24")
    with pytest.raises(NetworkError, match="not an IPv4 network"):
        NetworkConfig.for_prefix("pg", "10.250.0.1/24")
    with pytest.raises(NetworkError, match="/30 or larger"):
        NetworkConfig.for_prefix("pg", "10.250.0.0/31")


# -- lifecycle -------------------------------------------------------------------------------
async def test_creating_and_destroying_20_sandbox_networks_leaves_no_netns_veth_or_nft_leftovers(
    net: SandboxNetwork,
) -> None:
    ids = [f"leak{i:04d}" for i in range(20)]
    paths = await asyncio.gather(*(net.create(i) for i in ids))
    assert [p for p in paths if not p.exists()] == []
    left = net.leftovers()
    assert len(left["netns"]) == len(left["veth"]) == len(left["addresses"]) == 20
    addresses = {ipaddress.IPv4Address(a) for a in left["addresses"]}
    assert len(addresses) == 20
    assert [a for a in addresses if a not in net.config.subnet or a == net.config.gateway] == []
    assert len(system_leftovers(PREFIX)) == 40

    await asyncio.gather(*(net.destroy(i) for i in ids))
    assert net.leftovers() == {"netns": [], "veth": [], "addresses": []}
    assert system_leftovers(PREFIX) == []


async def test_the_sandbox_has_eth0_with_an_address_in_the_subnet_and_a_default_route(net: SandboxNetwork) -> None:
    path = await net.create("shape001")
    assert path == Path("/run/netns") / net.config.netns_name("shape001")
    links = {link["ifname"]: link for link in json.loads(sh("ip", "-n", path.name, "-j", "addr", "show"))}
    assert set(links) == {"lo", "eth0"}
    assert "UP" in links["lo"]["flags"]
    assert "UP" in links["eth0"]["flags"]
    (info,) = [a for a in links["eth0"]["addr_info"] if a["family"] == "inet"]
    address = ipaddress.IPv4Address(info["local"])
    assert address in net.config.subnet
    assert address != net.config.gateway
    assert info["prefixlen"] == 32  # no other sandbox on-link: everything goes through the gateway
    assert net.address_of("shape001") == address
    routes = json.loads(sh("ip", "-n", path.name, "-j", "route", "show"))
    assert sorted((r["dst"], r.get("gateway"), r["dev"]) for r in routes) == sorted(
        [("default", str(net.config.gateway), "eth0"), (str(net.config.gateway), None, "eth0")]
    )


async def test_ipv6_is_off_inside_the_sandbox(net: SandboxNetwork) -> None:
    path = await net.create("ipv6off1")
    value = sh("ip", "netns", "exec", path.name, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").strip()
    assert value in ("1", "")  # "" only on a kernel without IPv6
    assert sh("ip", "-n", path.name, "-6", "addr", "show").strip() == ""


async def test_forwarding_is_on_inside_the_sandbox_for_an_inner_engine_and_the_host_is_left_as_it_was(
    net: SandboxNetwork,
) -> None:
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    path = await net.create("forward1")
    assert sh("ip", "netns", "exec", path.name, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


async def test_an_unprivileged_user_in_the_sandbox_may_open_a_ping_socket(net: SandboxNetwork) -> None:
    path = await net.create("pingsock")
    script = (
        "import os, socket; os.setgid(65534); os.setuid(65534); "
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close(); print('ok')"
    )
    assert sh("ip", "netns", "exec", path.name, sys.executable, "-c", script).strip() == "ok"


async def test_destroy_is_idempotent_and_works_after_a_half_finished_create(net: SandboxNetwork) -> None:
    await net.destroy("neverwas")  # nothing to do, no error
    await net.create("twice001")
    await net.destroy("twice001")
    await net.destroy("twice001")
    # A crash after the netns and the address claim, before the veth:
    netns = net.config.netns_name("halfway1")
    sh("ip", "netns", "add", netns)
    sh("nft", "add", "element", "inet", PREFIX, "sandboxes", f'{{ {SUBNET[:-4]}200 comment "halfway1" }}')
    assert net.leftovers()["netns"] == [netns]
    assert net.address_of("halfway1") is not None
    await net.destroy("halfway1")
    assert net.leftovers() == {"netns": [], "veth": [], "addresses": []}
    await net.destroy("halfway1")


async def test_a_create_that_fails_half_way_leaves_nothing_behind(net: SandboxNetwork) -> None:
    sh("ip", "link", "del", net.config.bridge)  # the veth cannot join a bridge that is not there
    with pytest.raises(NetworkError, match="master"):
        await net.create("failing1")
    assert net.leftovers() == {"netns": [], "veth": [], "addresses": []}
    await net.setup_host()  # repairs the host side
    await net.create("failing1")


async def test_addresses_survive_an_agent_restart(net: SandboxNetwork) -> None:
    await net.create("before01")
    await net.create("before02")
    before = {net.address_of("before01"), net.address_of("before02")}
    restarted = SandboxNetwork(net.config)
    await restarted.setup_host()  # idempotent: keeps the running sandboxes and their addresses
    assert {restarted.address_of("before01"), restarted.address_of("before02")} == before
    assert len(restarted.leftovers()["netns"]) == 2
    await restarted.create("after001")
    assert restarted.address_of("after001") not in before
    await restarted.destroy("before01")
    assert restarted.address_of("before01") is None
    assert restarted.address_of("before02") in before
    removed = await restarted.reap(keep=["after001"])
    assert net.config.netns_name("before02") in removed
    assert restarted.leftovers()["netns"] == [net.config.netns_name("after001")]


async def test_a_subnet_the_host_already_routes_is_refused(net: SandboxNetwork) -> None:
    other = SandboxNetwork(NetworkConfig.for_prefix(OTHER_PREFIX, SUBNET))
    try:
        with pytest.raises(NetworkError, match="overlaps"):
            await other.setup_host()
    finally:
        await other.teardown_host()


async def test_teardown_host_removes_the_bridge_and_the_table(net: SandboxNetwork) -> None:
    await net.create("teardown")
    assert link_exists(net.config.bridge)
    assert table_exists(PREFIX)
    await net.teardown_host()
    assert not link_exists(net.config.bridge)
    assert not table_exists(PREFIX)
    assert net.leftovers() == {"netns": [], "veth": [], "addresses": []}
    assert system_leftovers(PREFIX) == []
    await net.teardown_host()


# -- walls -----------------------------------------------------------------------------------
async def test_the_hosts_ports_on_the_gateway_and_on_loopback_are_unreachable_from_a_sandbox(
    net: SandboxNetwork,
) -> None:
    netns = (await net.create("walled01")).name
    gateway = str(net.config.gateway)
    with host_listener(gateway) as gateway_port, host_listener("127.0.0.1") as loopback_port:
        assert host_connect(gateway, gateway_port) == "connected"  # the listeners work
        assert host_connect("127.0.0.1", loopback_port) == "connected"
        dropped = net.counters()["to_host"]
        assert connect_from(netns, gateway, gateway_port) == "timeout"
        assert net.counters()["to_host"] > dropped  # our wall dropped it, not something else
        assert connect_from(netns, "127.0.0.1", loopback_port) != "connected"


async def test_a_sandbox_still_reaches_its_own_loopback(net: SandboxNetwork) -> None:
    netns = (await net.create("ownlo001")).name
    with netns_listener(netns, "127.0.0.1", 8000):
        assert connect_from(netns, "127.0.0.1", 8000) == "connected"


async def test_one_sandbox_cannot_reach_another_sandboxs_listener(net: SandboxNetwork) -> None:
    first = (await net.create("peer0001")).name
    second = (await net.create("peer0002")).name
    target = str(net.address_of("peer0002"))
    with netns_listener(second, target, 8000):
        assert host_connect(target, 8000) == "connected"  # the listener works (the host may reach in)
        # Through the gateway, as every sandbox's routes send it (eth0 is a /32), with forwarding
        # on for the bridge: only the nft forward hook stands in the way.
        assert f"via {net.config.gateway}" in sh("ip", "-n", first, "route", "get", target)
        dropped = net.counters()["to_sandbox"]
        assert connect_from(first, target, 8000) == "timeout"
        assert net.counters()["to_sandbox"] > dropped, "the nft to_sandbox rule did not drop the routed SYN"
        # On-link, as root inside may route it: the bridge ports are isolated, ARP gets no answer.
        sh("ip", "-n", first, "route", "add", f"{target}/32", "dev", "eth0")
        assert connect_from(first, target, 8000) != "connected"
        for entry in json.loads(sh("ip", "-n", first, "-j", "neigh", "show", target)):
            assert set(entry["state"]) <= {"INCOMPLETE", "FAILED"}, f"ARP resolved the other sandbox: {entry}"
    ports = json.loads(sh("ip", "-d", "-j", "link", "show", "master", net.config.bridge))
    assert ports, f"no ports on {net.config.bridge}"
    for port in ports:
        assert port["linkinfo"]["info_slave_data"]["isolated"], f"bridge port {port['ifname']} is not isolated"


async def test_sandboxes_of_one_group_reach_each_other_on_tcp_udp_and_icmp_and_no_one_else_does(
    net: SandboxNetwork,
) -> None:
    host_forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    a, b, c = [(await net.create(f"group00{n}")).name for n in (1, 2, 3)]
    address = {ns: str(net.address_of(f"group00{n}")) for n, ns in zip((1, 2, 3), (a, b, c), strict=True)}
    await net.set_peers(peer_pairs([[ipaddress.IPv4Address(address[a]), ipaddress.IPv4Address(address[b])]]))
    assert Path(f"/proc/sys/net/ipv4/conf/{net.config.bridge}/forwarding").read_text() == "1\n"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forwarding  # the host-wide switch as found
    for src, dst in ((a, b), (b, a)):
        with netns_listener(dst, address[dst], 7946), udp_echo(dst, address[dst], 4789):
            assert connect_from(src, address[dst], 7946) == "connected"
            assert udp_from(src, address[dst], 4789) == "echo-ping"
            assert ping_from(src, address[dst])
    for src, dst in ((c, a), (c, b), (a, c), (b, c)):
        with netns_listener(dst, address[dst], 7946), udp_echo(dst, address[dst], 4789):
            dropped = net.counters()["to_sandbox"]
            assert connect_from(src, address[dst], 7946) == "timeout"
            assert udp_from(src, address[dst], 4789) == "timeout"
            assert not ping_from(src, address[dst])
            assert net.counters()["to_sandbox"] >= dropped + 3
    # The host's advice to go straight to the peer (on-link, which the isolated ports wall off) is
    # never sent.
    assert net.counters()["redirects"] > 0
    for entry in json.loads(sh("ip", "-n", a, "-j", "route", "show", "cache")):
        assert entry.get("gateway") in (None, str(net.config.gateway)), f"a redirect reached the sandbox: {entry}"
    # Taken away: the pair goes, the wall is back.
    await net.set_peers([])
    with netns_listener(b, address[b], 7946):
        assert connect_from(a, address[b], 7946) == "timeout"


async def test_the_pairs_survive_a_reload_of_the_walls_by_a_restarted_agent(net: SandboxNetwork) -> None:
    a, b = [(await net.create(f"again00{n}")).name for n in (1, 2)]
    pairs = peer_pairs([[net.address_of("again001"), net.address_of("again002")]])  # type: ignore[list-item]
    restarted = SandboxNetwork(net.config)
    restarted.peers = pairs  # as the agent derives them from its records before setting the host up
    await restarted.setup_host()
    target = str(net.address_of("again002"))
    with netns_listener(b, target, 2377):
        assert connect_from(a, target, 2377) == "connected"


async def test_egress_off_drops_all_forwarding_and_never_turns_ip_forward_on(
    net: SandboxNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    real_write = network._write_sysctl
    monkeypatch.setattr(network, "_write_sysctl", lambda key, value: (writes.append(key), real_write(key, value)))
    again = SandboxNetwork(net.config)
    await again.setup_host()
    assert "ipv4/ip_forward" not in writes
    assert again.ip_forward_found in ("0", "1")
    ruleset = sh("nft", "list", "table", "inet", PREFIX)
    assert 'counter name "egress_off" drop' in ruleset
    assert "masquerade" not in ruleset


async def test_egress_on_masquerades_to_public_addresses_only_and_keeps_the_walls() -> None:
    config = NetworkConfig.for_prefix(OTHER_PREFIX, f"10.251.{os.getpid() % 250}.0/24", egress=True)
    sandbox_net = SandboxNetwork(config)
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    found = forward.read_text()
    try:
        await sandbox_net.setup_host()
        assert sandbox_net.ip_forward_found == found.strip()
        ruleset = sh("nft", "list", "table", "inet", OTHER_PREFIX)
        out = json.dumps(sandbox_net.egress_interface)
        assert f"ip saddr {config.subnet} oifname {out} masquerade" in ruleset
        assert 'ip daddr @non_public counter name "to_non_public" drop' in ruleset
        assert "169.254.0.0/16" in ruleset
        assert "10.0.0.0/8" in ruleset
        assert sh("sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
        netns = (await sandbox_net.create("egress01")).name
        with host_listener(str(config.gateway)) as port:
            assert connect_from(netns, str(config.gateway), port) == "timeout"
    finally:
        await sandbox_net.teardown_host()
        forward.write_text(found)  # the agent never turns it off; the test puts back what it found
    assert system_leftovers(OTHER_PREFIX) == []
    assert not table_exists(OTHER_PREFIX)


async def test_the_listening_ports_of_a_sandbox_are_read_by_netlink_and_from_proc_alike(net: SandboxNetwork) -> None:
    path = await net.create("listen01")
    address = str(net.address_of("listen01"))
    listeners = Listeners()
    assert listeners.ports(path, None) == []
    with (
        netns_listener(path.name, "0.0.0.0", 8080),
        netns_listener(path.name, address, 8082),
        netns_listener(path.name, "127.0.0.1", 8081),
    ):
        assert listeners.ports(path, None) == [8080, 8082]  # not the one on loopback
        pid = int(sh("ip", "netns", "pids", path.name).split()[0])
        assert sorted(proc_listeners(pid)) == [8080, 8082]
    assert listeners.ports(path, None) == []
    listeners.keep_only(set())  # the socket goes, and with it the last hold on the namespace
    await net.destroy("listen01")
    assert listeners.ports(path, None) == []  # gone: nothing to ask, no process to read
