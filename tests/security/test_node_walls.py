"""Escape attempts from a node of one group (a session's private network, issue 16) towards another
group's nodes and the host. Each must fail, while the node's own peer answers throughout.

Two groups of two busybox sandboxes, X and Y, made through the agent of a real stack. From inside a
node of X (root, with CAP_NET_ADMIN over its own network) the tests try Y's nodes directly (TCP,
UDP, ICMP), with another source (Y's other node's address, and its MAC too: the port pin drops
it), on-link past the gateway (ARP, and a static neighbour entry with Y's MAC: the isolated bridge
ports carry no frame between sandboxes), and the host's ports (listeners the test opens on the
gateway address and on 127.0.0.1, as the web tier and Redis would be). A docker sandbox's inner
container reaches its node's peer (swarm needs it) and not another group. Traffic stays on this
machine: every address is a sandbox's, the gateway or loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from sandbox import settings as host_settings
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from sandbox.network.ports import mac_for
from tests.dockerkit import ENGINE_WAIT, run
from tests.groupkit import EVERYTHING, NOTHING, group_of, netns_of, output, reaches, serving
from tests.netprobes import connect_from, netns_listener
from tests.security.test_network_walls import host_listener
from tests.security.test_port_pinning import pinning_drops
from tests.stack import Stack

Sandbox = dict[str, Any]
PORT = 7946  # swarm's gossip port, one a node's peers use


def walls(stack: Stack) -> SandboxNetwork:
    return SandboxNetwork(NetworkConfig.from_settings(host_settings.load(stack.env).network))


@pytest_asyncio.fixture
async def groups(images_stack: Stack) -> AsyncIterator[tuple[list[Sandbox], list[Sandbox]]]:
    """Groups X and Y of two busybox nodes each (node1, node2)."""
    async with group_of(images_stack, "node1", "node2") as x, group_of(images_stack, "node1", "node2") as y:
        yield x, y


async def test_a_node_reaches_its_own_peer_and_no_node_of_another_group(
    images_stack: Stack, groups: tuple[list[Sandbox], list[Sandbox]]
) -> None:
    (x1, x2), y = groups
    assert await reaches(images_stack, x1, x2, "node2") == EVERYTHING
    for target in y:
        before = walls(images_stack).counters()["to_sandbox"]
        assert await reaches(images_stack, x1, target) == NOTHING
        assert await reaches(images_stack, target, x1) == NOTHING
        assert walls(images_stack).counters()["to_sandbox"] > before  # the wall dropped them
    # The other group's names mean nothing here: the hosts file names the node's own group only.
    assert y[1]["address"] not in await output(images_stack, x1, "cat /etc/hosts")


async def test_a_node_that_takes_the_address_and_mac_of_another_groups_node_reaches_none_of_its_peers(
    images_stack: Stack, groups: tuple[list[Sandbox], list[Sandbox]]
) -> None:
    # Class: spoofing a member of another group to get through its pairs (y2 -> y1 is accepted).
    (x1, x2), (y1, y2) = groups
    said = await output(images_stack, x1, f"ip addr add {y2['address']}/32 dev eth0 && echo ADDED")
    assert "ADDED" in said  # root inside owns its network
    netns = netns_of(images_stack, x1)
    with netns_listener(netns_of(images_stack, y1), y1["address"], PORT):
        for mac in ("", mac_for(ipaddress.IPv4Address(y2["address"]))):
            if mac:
                assert "SET" in await output(images_stack, x1, f"busybox ifconfig eth0 hw ether {mac} && echo SET")
            before = pinning_drops(walls(images_stack))
            assert await asyncio.to_thread(connect_from, netns, y1["address"], PORT, y2["address"]) == "timeout"
            assert pinning_drops(walls(images_stack)) > before  # the port pin dropped it (or its ARP first)
    assert await reaches(images_stack, y2, y1, "node1") == EVERYTHING  # the spoofed one's own traffic flows


async def test_a_node_that_puts_another_groups_node_on_link_gets_no_frame_to_it(
    images_stack: Stack, groups: tuple[list[Sandbox], list[Sandbox]]
) -> None:
    # Class: going round the gateway's walls at layer 2 (ARP, then a frame straight to the MAC).
    (x1, x2), (y1, y2) = groups
    target = y1["address"]
    mac = mac_for(ipaddress.IPv4Address(target))
    async with serving(images_stack, y1, f"nc -ll -p {PORT} -e echo tcp-hello"):
        said = await output(
            images_stack,
            x1,
            f"ip route add {target}/32 dev eth0; nc -w 2 {target} {PORT} </dev/null; ip neigh show {target}; "
            f"ip neigh replace {target} lladdr {mac} dev eth0 nud permanent; nc -w 2 {target} {PORT} </dev/null; "
            "echo TRIED",
        )
    assert "TRIED" in said and "tcp-hello" not in said, said
    assert "REACHABLE" not in said and "STALE" not in said, said  # ARP got no answer


@pytest.mark.parametrize("where", ["gateway", "loopback"])
async def test_no_host_port_answers_a_node_while_its_peer_does(
    images_stack: Stack, groups: tuple[list[Sandbox], list[Sandbox]], where: str
) -> None:
    # Class: a node reaching the control plane (the web tier, Redis) on the host.
    (x1, x2), _ = groups
    gateway = str(walls(images_stack).config.gateway)
    with host_listener("0.0.0.0") as (port, peers):
        before = walls(images_stack).counters()["to_host"]
        said = await output(
            images_stack,
            x1,
            f"nc -w 2 {gateway if where == 'gateway' else '127.0.0.1'} {port} </dev/null && echo CONNECTED; echo TRIED",
        )
        assert "TRIED" in said and "CONNECTED" not in said, said
        assert peers == []
        if where == "gateway":
            assert walls(images_stack).counters()["to_host"] > before
    assert await reaches(images_stack, x1, x2, "node2") == EVERYTHING


@pytest.mark.alongside
async def test_an_inner_container_of_a_node_reaches_a_peer_node_and_no_other_group(docker_image: Stack) -> None:
    # Class: lateral movement from a container inside a node (swarm's overlay runs between nodes).
    async with group_of(docker_image, "node1", image="docker") as (d1,):
        ready = await run(
            docker_image,
            d1["id"],
            f"timeout {ENGINE_WAIT:.0f} sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'; echo rc=$?",
            ENGINE_WAIT + 10,
        )
        assert "rc=0" in ready["output"], ready
        async with (
            group_of(docker_image, "node2", group=d1["group"]) as (x2,),
            group_of(docker_image, "node1") as (y1,),
        ):
            for target in (x2, y1):
                async with serving(docker_image, target, f"nc -ll -p {PORT} -e echo tcp-hello"):
                    said = await output(
                        docker_image,
                        d1,
                        f"docker run --rm busybox nc -w 2 {target['address']} {PORT} </dev/null; echo TRIED",
                        60,
                    )
                assert "TRIED" in said, said
                assert ("tcp-hello" in said) == (target is x2), said
