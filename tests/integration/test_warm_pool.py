"""The warm pool and reconciliation, on a stack of their own (2 warm sandboxes, 3 at most, a reaper every second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.settings import load
from sandbox.host import cgroups
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from sandbox.wire.client import AgentClient
from tests.stack import Stack, Terminal

POOL, CAP = 2, 3


@pytest.fixture(scope="module")
def warm_stack() -> Iterator[Stack]:
    running = Stack.create(
        PLAYGROUND_WARM_POOL=str(POOL), PLAYGROUND_HOST_MAX_SANDBOXES=str(CAP), PLAYGROUND_REAPER_INTERVAL="1"
    )
    running.start()
    yield running
    running.end_started_sessions()
    running.stop()


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


async def wait_for_pool(stack: Stack, size: int = POOL, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        listing = await agent(stack).request("list")
        if listing["warm"].get("busybox") == size or time.monotonic() > deadline:
            return listing
        await asyncio.sleep(0.05)


def sandbox_dirs(stack: Stack) -> set[str]:
    return set(stack.host_state()["sandbox_dirs"])


async def shell(stack: Stack) -> tuple[dict[str, Any], Terminal]:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return session, terminal


def session_state(stack: Stack, session: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    """The session once its instance runs or the session has ended."""
    deadline = time.monotonic() + timeout
    while True:
        body = stack.request(
            "GET", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
        ).json()
        settled = body["instances"][0]["state"] == "running" or body["state"] != "active"
        if settled or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


async def test_start_takes_a_ready_sandbox_and_the_pool_refills_in_the_background(warm_stack: Stack) -> None:
    assert (await wait_for_pool(warm_stack))["sandboxes"] == []
    pooled = sandbox_dirs(warm_stack)
    assert len(pooled) == POOL
    session, terminal = await shell(warm_stack)
    assert (await terminal.run("hostname")).strip() == "node1"
    listing = await wait_for_pool(warm_stack)
    assert len(listing["sandboxes"]) == 1 and listing["warm"]["busybox"] == POOL
    assert listing["sandboxes"][0]["runtime_id"] in pooled  # a pooled sandbox became the visitor's
    assert len(sandbox_dirs(warm_stack)) == POOL + 1
    await terminal.close()
    warm_stack.end_session(session)


async def test_a_sandbox_a_visitor_used_is_never_handed_out_again(warm_stack: Stack) -> None:
    await wait_for_pool(warm_stack)
    session, terminal = await shell(warm_stack)
    await terminal.run("echo secret > /root/left-behind")
    used = (await agent(warm_stack).request("list"))["sandboxes"][0]["runtime_id"]
    assert used in sandbox_dirs(warm_stack)
    await terminal.close()
    warm_stack.end_session(session)
    await wait_for_pool(warm_stack)
    for _ in range(POOL + 1):  # every sandbox the pool holds now, and one more
        session, terminal = await shell(warm_stack)
        assert "No such file" in await terminal.run("cat /root/left-behind 2>&1")
        await terminal.close()
        warm_stack.end_session(session)
    assert used not in sandbox_dirs(warm_stack)


async def test_pooled_sandboxes_count_against_the_hosts_capacity_and_give_way_to_visitors(warm_stack: Stack) -> None:
    await wait_for_pool(warm_stack)
    sessions = [warm_stack.start_session() for _ in range(CAP)]
    assert [session_state(warm_stack, s)["instances"][0]["state"] for s in sessions] == ["running"] * CAP
    assert len(sandbox_dirs(warm_stack)) == CAP and (await agent(warm_stack).request("list"))["warm"]["busybox"] == 0
    over = warm_stack.start_session()
    refused = session_state(warm_stack, over)
    assert refused["state"] != "active" and refused["ended_reason"] == "out_of_resources", refused
    warm_stack.end_session(sessions.pop())
    session, terminal = await shell(warm_stack)  # the freed slot is usable at once
    await terminal.close()
    for s in [*sessions, session]:
        warm_stack.end_session(s)
    assert (await wait_for_pool(warm_stack))["warm"]["busybox"] == POOL


async def test_reconciliation_removes_remains_of_a_crash_that_nobody_owns(warm_stack: Stack) -> None:
    await wait_for_pool(warm_stack)
    await asyncio.sleep(1)  # and let the network pool fill up behind it
    before = {k: sorted(v) for k, v in warm_stack.host_state().items()}
    # The remains of a create that crashed half-way: a sandbox directory, a cgroup, a network.
    stray = "deadbeef" * 4
    (warm_stack.data_dir / "agent" / "sandboxes" / stray / "rootfs").mkdir(parents=True)
    cfg = load(warm_stack.env)
    cgroup = cgroups.hierarchies()[0] / cfg.cgroup_parent / stray
    cgroup.mkdir(parents=True)
    net = SandboxNetwork(NetworkConfig.from_settings(cfg.network))
    await net.create("nstray000000001")
    assert warm_stack.host_state() != before
    removed = (await agent(warm_stack).request("reconcile"))["removed"]
    assert stray in removed and len(removed) >= 4  # the sandbox; the netns, veth and address
    deadline = time.monotonic() + 10  # the network pool may still have been filling "before"
    while {k: sorted(v) for k, v in warm_stack.host_state().items()} != before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert {k: sorted(v) for k, v in warm_stack.host_state().items()} == before
    session, terminal = await shell(warm_stack)  # the pooled sandboxes kept their networks
    assert (await terminal.run("ip -4 -o addr show eth0 | wc -l")).strip() == "1"
    await terminal.close()
    warm_stack.end_session(session)


async def test_a_session_whose_sandbox_vanished_ends_as_host_lost(warm_stack: Stack) -> None:
    before = {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]}
    session, terminal = await shell(warm_stack)
    await terminal.close()
    (sandbox_id,) = {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]} - before
    await asyncio.sleep(5)  # older than the reconciler's grace period
    await agent(warm_stack).request("destroy", id=sandbox_id)  # behind the web tier's back
    deadline = time.monotonic() + 15
    while (body := session_state(warm_stack, session))["state"] == "active" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert body["ended_reason"] == "host_lost", body


async def test_a_sandbox_no_session_owns_is_destroyed_by_the_reaper(warm_stack: Stack) -> None:
    await agent(warm_stack).request("create", id="0rphan00" * 4, hostname="node2")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "0rphan00" * 4 not in {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]}:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the orphan sandbox was not destroyed within 15 s")
