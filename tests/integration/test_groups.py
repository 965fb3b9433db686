"""Groups of sandboxes on a private network (issue 16: a session's nodes), made through the agent of
a real stack: members reach each other by name on any port and protocol, every other sandbox stays
walled off both ways, /etc/hosts follows members coming and going, all of it outlives an agent
restart; and the ``stats`` op reports a sandbox's listeners, memory and CPU.

One stack of its own: a warm pool of one (node1 comes from it, as a session's first node does), a
reconciliation every second, and a reaper that leaves these sessionless sandboxes alone.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from playground.config import load
from tests.dockerkit import agent
from tests.groupkit import EVERYTHING, NOTHING, create, group_of, output, reaches, serving
from tests.stack import Stack
from tests.waiting import eventually, eventually_async

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = pytest.mark.alongside

Sandbox = dict[str, Any]


@pytest.fixture(scope="module")
def group_stack() -> Iterator[Stack]:
    with Stack.running(
        PLAYGROUND_WARM_POOL="1", PLAYGROUND_RECONCILE_INTERVAL="1", PLAYGROUND_REAPER_INTERVAL="3600"
    ) as running:
        yield running


def named(text: str) -> list[str]:
    """The lines of a hosts file naming sandboxes (not localhost, nor the gateway as ``registry``), as
    "address name"."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip() and "localhost" not in line]
    return [line for line in lines if not line.endswith(" registry")]


def warm_ready(stack: Stack) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        return bool((await agent(stack).request("list"))["warm"].get("busybox"))

    return ready


async def test_nodes_of_one_group_reach_each_other_by_name_on_any_port_and_protocol(group_stack: Stack) -> None:
    await eventually_async(warm_ready(group_stack), "a warm sandbox", 30)
    async with group_of(group_stack, "node1", "node2") as (node1, node2):
        assert node1["runtime_id"] != node1["id"]  # node1 came from the warm pool
        assert node2["runtime_id"] == node2["id"]  # node2 started cold: the pool's are all node1
        assert node1["group"] == node2["group"] is not None
        assert (await output(group_stack, node2, "hostname")).strip() == "node2"
        both = [f"{node1['address']} node1", f"{node2['address']} node2"]
        for node in (node1, node2):
            assert named(await output(group_stack, node, "cat /etc/hosts")) == both
        assert await reaches(group_stack, node1, node2, "node2") == EVERYTHING
        assert await reaches(group_stack, node2, node1, "node1", port=2377) == EVERYTHING


async def test_a_sandbox_of_another_group_or_of_none_reaches_no_node_and_no_node_reaches_it(
    group_stack: Stack,
) -> None:
    async with group_of(group_stack, "node1", "node2") as (node1, node2), group_of(group_stack, "node1") as (other,):
        loner = await create(group_stack, "loner", None)
        try:
            for outsider in (other, loner):
                assert "node2" not in await output(group_stack, outsider, "cat /etc/hosts")
                for node in (node1, node2):
                    assert await reaches(group_stack, outsider, node) == NOTHING
                    assert await reaches(group_stack, node, outsider) == NOTHING
        finally:
            await agent(group_stack).request("destroy", id=loner["id"])


async def test_every_members_hosts_file_follows_members_created_and_destroyed(group_stack: Stack) -> None:
    async with group_of(group_stack, "node1", "node2") as (node1, node2):
        inode = await output(group_stack, node1, "ls -i /etc/hosts")
        node3 = await create(group_stack, "node3", node2["group"])
        three = [f"{node1['address']} node1", f"{node2['address']} node2", f"{node3['address']} node3"]
        try:
            for node in (node1, node2, node3):
                assert named(await output(group_stack, node, "cat /etc/hosts")) == three
            assert await reaches(group_stack, node3, node1, "node1") == EVERYTHING
        finally:
            await agent(group_stack).request("destroy", id=node3["id"])
        hosts = await output(group_stack, node1, "cat /etc/hosts")
        assert named(hosts) == three[:2]
        gateway = load(group_stack.env).registry_mirror.split(":")[0]
        assert f"{gateway} registry" in [" ".join(line.split()) for line in hosts.splitlines()], hosts  # kept
        assert await output(group_stack, node1, "ls -i /etc/hosts") == inode


async def test_a_group_outlives_an_agent_restart_with_its_pairs_and_hosts(group_stack: Stack) -> None:
    async with group_of(group_stack, "node1", "node2") as (node1, node2):
        group_stack.restart_part("agent")
        eventually(lambda: answers(group_stack), "the restarted agent answers", 30, explain=group_stack.log_tail)
        listed = {s["id"]: s for s in (await agent(group_stack).request("list"))["sandboxes"]}
        assert listed[node1["id"]]["group"] == listed[node2["id"]]["group"] == node1["group"]
        assert await reaches(group_stack, node1, node2, "node2") == EVERYTHING
        node3 = await create(group_stack, "node3", node1["group"])  # the adopted members are the group's
        try:
            assert f"{node3['address']} node3" in named(await output(group_stack, node1, "cat /etc/hosts"))
            assert await reaches(group_stack, node3, node2, "node2") == EVERYTHING
        finally:
            await agent(group_stack).request("destroy", id=node3["id"])


def answers(stack: Stack) -> bool:
    with socket.socket(socket.AF_UNIX) as conn:
        return conn.connect_ex(str(stack.data_dir / "run" / "agent.sock")) == 0


async def stats_of(stack: Stack, sandbox: Sandbox) -> dict[str, Any]:
    reply = await agent(stack).request("stats", ids=[sandbox["id"], "0" * 32])
    assert set(reply["sandboxes"]) == {sandbox["id"]}  # an unknown id is left out
    return dict(reply["sandboxes"][sandbox["id"]])


async def test_stats_report_the_listeners_others_can_reach_within_two_seconds_and_usage_that_moves(
    group_stack: Stack,
) -> None:
    async with group_of(group_stack, "node1") as (node,):
        before = await stats_of(group_stack, node)
        assert before["address"] == node["address"]
        assert before["memory_limit_bytes"] > 0
        assert before["ports"] == []
        async with serving(group_stack, node, "sh -c 'nc -ll -p 8080 -e true & httpd -f -p 127.0.0.1:8081'"):
            started = time.monotonic()
            stats = await eventually_async(
                lambda: stats_of_with(group_stack, node, 8080), "port 8080 in the stats", 2, interval=0.1
            )
            assert time.monotonic() - started < 2
            assert "8081" in await output(group_stack, node, "netstat -ltn")  # listening, on loopback
            assert stats["ports"] == [8080]
        await output(group_stack, node, "dd if=/dev/zero of=/tmp/fill bs=1M count=40 2>/dev/null")
        await output(group_stack, node, "timeout 1 sh -c 'while :; do :; done'; true")
        after = await stats_of(group_stack, node)
        assert after["memory_bytes"] >= before["memory_bytes"] + 30 * 2**20
        assert after["cpu_seconds"] >= before["cpu_seconds"] + 0.1  # of 1 s busy (2 cores shared with other tests)


async def stats_of_with(stack: Stack, sandbox: Sandbox, port: int) -> dict[str, Any] | None:
    stats = await stats_of(stack, sandbox)
    return stats if port in stats["ports"] else None
