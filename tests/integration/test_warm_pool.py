"""The warm pool and reconciliation, on a stack of their own (2 warm sandboxes, 3 at most, a reaper every second)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sandbox.host import cgroups
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from sandbox.settings import load
from sandbox.wire.client import AgentClient
from tests.stack import Stack, Terminal
from tests.waiting import eventually, eventually_async

POOL, CAP = 2, 3


@pytest.fixture(scope="module")
def warm_stack() -> Iterator[Stack]:
    with Stack.running(
        PLAYGROUND_WARM_POOL=str(POOL), PLAYGROUND_HOST_MAX_SANDBOXES=str(CAP), PLAYGROUND_REAPER_INTERVAL="1"
    ) as running:
        yield running


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


async def no_visitor_sandbox(stack: Stack) -> None:
    """Wait until the agent runs no visitor's sandbox (only pooled ones): an ended session's are
    destroyed in the background, after DELETE has answered."""
    await eventually_async(
        lambda: agent(stack).request("list"),
        "no visitor's sandbox left on the host",
        30,
        until=lambda listing: listing["sandboxes"] == [],
    )


@pytest.fixture(autouse=True)
async def alone_on_the_stack(warm_stack: Stack) -> AsyncIterator[None]:
    """Each test starts with no visitor's sandbox and ends its sessions, so it counts only its own
    sandboxes, and a failure leaves no session that makes the next tests run into the capacity."""
    await no_visitor_sandbox(warm_stack)
    yield
    warm_stack.end_started_sessions()


async def wait_for_pool(stack: Stack, size: int = POOL, timeout: float = 20) -> dict[str, Any]:
    """The agent's listing once its warm pool holds ``size`` busybox sandboxes."""
    return await eventually_async(
        lambda: agent(stack).request("list"),
        f"the warm pool holds {size} busybox sandboxes",
        timeout,
        until=lambda listing: listing["warm"].get("busybox") == size,
    )


def wait_for_network_pool(stack: Stack) -> None:
    """Wait until the agent's pool of ready networks is full (it fills in the background)."""
    size, pool = load(stack.env).network.pool, stack.data_dir / "agent" / "net"
    eventually(
        lambda: sorted(pool.iterdir()), f"{size} ready networks in {pool}", until=lambda ready: len(ready) >= size
    )


def sandbox_dirs(stack: Stack) -> set[str]:
    return set(stack.host_state()["sandbox_dirs"])


async def shell(stack: Stack) -> tuple[dict[str, Any], Terminal]:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return session, terminal


def session_state(stack: Stack, session: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    """The session once its instance runs or the session has ended."""
    return eventually(
        lambda: stack.shown(session),
        f"session {session['id']} running or ended",
        timeout,
        until=lambda body: body["instances"][0]["state"] == "running" or body["state"] != "active",
    )


async def test_start_takes_a_ready_sandbox_and_the_pool_refills_in_the_background(warm_stack: Stack) -> None:
    assert (await wait_for_pool(warm_stack))["sandboxes"] == []
    pooled = sandbox_dirs(warm_stack)
    assert len(pooled) == POOL
    session, terminal = await shell(warm_stack)
    assert (await terminal.run("hostname")).strip() == "node1"
    listing = await wait_for_pool(warm_stack)
    assert len(listing["sandboxes"]) == 1
    assert listing["warm"]["busybox"] == POOL
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
    assert len(sandbox_dirs(warm_stack)) == CAP
    assert (await agent(warm_stack).request("list"))["warm"]["busybox"] == 0
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
    await asyncio.to_thread(wait_for_network_pool, warm_stack)
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
    assert stray in removed
    assert len(removed) >= 4  # the sandbox; the netns, veth and address
    await eventually_async(
        lambda: {k: sorted(v) for k, v in warm_stack.host_state().items()},
        f"the host as before the crash: {before}",
        until=lambda state: state == before,
    )
    session, terminal = await shell(warm_stack)  # the pooled sandboxes kept their networks
    assert (await terminal.run("ip -4 -o addr show eth0 | wc -l")).strip() == "1"
    await terminal.close()
    warm_stack.end_session(session)


async def test_a_session_whose_sandbox_vanished_ends_as_host_lost(warm_stack: Stack) -> None:
    before = {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]}
    session, terminal = await shell(warm_stack)
    await terminal.close()
    (sandbox_id,) = {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]} - before
    await asyncio.sleep(5)  # the sandbox must be older than the reconciler's grace period: waiting is the point
    await agent(warm_stack).request("destroy", id=sandbox_id)  # behind the web tier's back
    body = await eventually_async(
        lambda: warm_stack.shown(session), "the end of the session", 15, 0.2, until=lambda b: b["state"] != "active"
    )
    assert body["ended_reason"] == "host_lost", body


async def test_a_sandbox_no_session_owns_is_destroyed_by_the_reaper(warm_stack: Stack) -> None:
    await agent(warm_stack).request("create", id="0rphan00" * 4, hostname="node2")

    async def sandbox_ids() -> set[str]:
        return {s["id"] for s in (await agent(warm_stack).request("list"))["sandboxes"]}

    await eventually_async(
        sandbox_ids, "the orphan sandbox destroyed", 15, 0.2, until=lambda ids: "0rphan00" * 4 not in ids
    )
