"""The agent's parts that need no host: its records, the checks of request fields, waiting for a
sandbox being created, and counting the host's slots."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from sandbox.agent import requestfields, warmpool
from sandbox.agent.capacity import Capacity
from sandbox.agent.groups import Groups
from sandbox.agent.provisioning import Provisioner
from sandbox.agent.recordings import Recordings
from sandbox.agent.records import Sandbox, Tab, read_record, write_record
from sandbox.agent.registry import Registry
from sandbox.agent.sandboxes import Sandboxes
from sandbox.images.store import Image, ImageStore
from sandbox.network.namespaces import SandboxNetwork
from sandbox.network.pool import Lease
from sandbox.pty.terminal import Terminal
from sandbox.runtime.runc import RuncRuntime
from sandbox.wire.protocol import AgentError
from sandbox.wire.replay import ReplayBuffer
from tests.waiting import eventually_async


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Terminals on real PTY pairs (make them inside a test's loop), closed afterwards."""
    made: list[Terminal] = []
    yield made
    for terminal in made:
        terminal.close()


def new_terminal(made: list[Terminal]) -> Terminal:
    master, slave = os.openpty()
    os.close(slave)
    terminal = Terminal(master, ReplayBuffer(4096))
    made.append(terminal)
    return terminal


async def test_a_sandbox_read_back_from_its_record_is_the_one_recorded(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    lease = Lease("n1", Path("/run/netns/pg-n1"), ipaddress.IPv4Address("10.89.0.7"), tmp_path, 1000131072)
    sandbox = Sandbox("abcdefgh12", "node1", "busybox", 1700000000.5, new_terminal(terminals), lease, "w1234")
    sandbox.id_range = lease.ids
    sandbox.tabs[2] = Tab(2, new_terminal(terminals), pid=4242, started=99)
    sandbox.next_tab = 3
    write_record(sandbox, tmp_path)
    record = read_record(tmp_path)
    again = Sandbox.from_record(record, new_terminal(terminals), "w1234", tmp_path)
    assert again.network == lease
    assert again.record() == {**sandbox.record(), "tabs": [], "next_tab": 1}  # tabs are adopted apart
    assert record["tabs"] == [{"n": 2, "pid": 4242, "started": 99}]
    assert record["next_tab"] == 3
    assert not list(tmp_path.glob("*.new"))


async def test_a_record_without_a_network_reads_back_without_one(tmp_path: Path, terminals: list[Terminal]) -> None:
    write_record(Sandbox("abcdefgh12", "node2", "busybox", 1.0, new_terminal(terminals)), tmp_path)
    again = Sandbox.from_record(read_record(tmp_path), new_terminal(terminals), "abcdefgh12", tmp_path)
    assert again.network is None
    assert again.hostname == "node2"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"id": "SHOUTING1"}, "id"),
        ({"id": "short"}, "id"),
        ({}, "id"),
        ({"id": "abcdefgh12", "terminal": True}, "terminal"),
    ],
)
def test_bad_request_fields_are_refused_naming_the_field(request_: dict[str, object], field: str) -> None:
    with pytest.raises(AgentError) as refused:
        requestfields.sandbox_id(request_)
        requestfields.terminal_number(request_)
    assert refused.value.code == "bad_request"
    assert refused.value.message.startswith(f"{field}=")


def test_a_hostname_must_be_a_dns_label() -> None:
    assert requestfields.hostname({"hostname": "node-2"}) == "node-2"
    with pytest.raises(AgentError):
        requestfields.hostname({"hostname": "-node"})


async def test_an_attacher_waiting_for_a_sandbox_gets_it_once_its_creation_is_announced() -> None:
    registry = Registry()

    async def create() -> None:
        await asyncio.sleep(0.05)  # the point: the creation takes a while, which the attacher waits out
        registry.sandboxes["abcdefgh12"] = Sandbox("abcdefgh12", "node1", "busybox", 1.0)
        registry.announce("abcdefgh12")

    started = time.monotonic()
    creation = asyncio.create_task(create())
    sandbox = await registry.wait_for_terminal("abcdefgh12", 5)
    await creation
    assert sandbox is registry.sandboxes["abcdefgh12"]
    assert time.monotonic() - started < 2


async def test_a_wait_for_a_sandbox_that_never_comes_ends_with_none() -> None:
    assert await Registry().wait_for_terminal("abcdefgh12", 0.05) is None


async def test_a_sandbox_is_live_until_its_destruction_starts(terminals: list[Terminal]) -> None:
    registry = Registry()
    sandbox = registry.sandboxes["abcdefgh12"] = Sandbox("abcdefgh12", "node1", "busybox", 1.0)
    with pytest.raises(AgentError, match="no sandbox abcdefgh12"):  # being created: no terminal yet
        registry.live({"id": "abcdefgh12"})
    sandbox.terminal = new_terminal(terminals)
    assert registry.live({"id": "abcdefgh12"}) is sandbox
    registry.destroying.add("abcdefgh12")
    with pytest.raises(AgentError, match="no sandbox abcdefgh12"):
        registry.live({"id": "abcdefgh12"})


async def never_built(image: str, runtime_id: str) -> Sandbox:
    raise AssertionError("the pool was not started")


async def discarded(sandbox: Sandbox) -> None:
    pass


async def test_a_cold_start_on_a_full_host_evicts_a_pooled_sandbox() -> None:
    registry = Registry()
    capacity = Capacity(2, registry, {"busybox": 1}, never_built, discarded)
    capacity.warm.ready["busybox"].append(Sandbox("w1", "node1", "busybox", 1.0))
    registry.sandboxes["abcdefgh12"] = Sandbox("abcdefgh12", "node1", "busybox", 1.0)
    registry.sandboxes["abcdefgh13"] = Sandbox("abcdefgh13", "node3", "busybox", 1.0)  # a node3: no warm one fits
    assert capacity.room() == -1
    await capacity.make_room()
    assert capacity.room() == 0
    assert capacity.warm.ready["busybox"] == []


async def test_a_cold_start_on_a_host_full_of_visitors_is_refused_at_once() -> None:
    registry = Registry()
    capacity = Capacity(1, registry, {}, never_built, discarded)
    registry.sandboxes["abcdefgh12"] = Sandbox("abcdefgh12", "node1", "busybox", 1.0)
    registry.sandboxes["abcdefgh13"] = Sandbox("abcdefgh13", "node1", "busybox", 1.0)
    started = time.monotonic()
    with pytest.raises(AgentError) as refused:
        await capacity.make_room()
    assert refused.value.code == "at_capacity"
    assert "maximum of 1" in refused.value.message
    assert time.monotonic() - started < 1  # no slot is about to free up: nothing to wait for


async def test_a_pooled_sandbox_handed_over_is_replaced_only_after_the_refill_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not at once: starting the replacement would take CPU from the visitor's first prompt."""
    monkeypatch.setattr(warmpool, "REFILL_DELAY", 0.3)
    builds: list[float] = []

    async def build(image: str, runtime_id: str) -> Sandbox:
        builds.append(time.monotonic())
        return Sandbox(runtime_id, "node1", image, 1.0)

    pool = warmpool.WarmPool({"busybox": 1}, build, discarded, lambda: 10)
    pool.start()
    try:
        await eventually_async(lambda: pool.ready["busybox"], "the pool filled", 5)
        handed_over = time.monotonic()
        assert pool.take("busybox", "node1") is not None
        await eventually_async(lambda: len(builds) == 2, "the replacement started", 5)
        assert builds[1] - handed_over >= 0.3
    finally:
        await pool.close()


class UnreadStore:
    """An image store that fails the test if it is read."""

    def get(self, name: str) -> Image:
        raise AssertionError(f"the image store was read for {name!r}")


class Recording:
    """A provisioner that only records (the agent's sandbox.json)."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    def record(self, sandbox: Sandbox) -> None:
        self.recorded.append(sandbox.sandbox_id)


async def test_a_create_a_pooled_sandbox_fits_takes_it_without_reading_the_image_store(
    terminals: list[Terminal],
) -> None:
    registry = Registry()
    capacity = Capacity(4, registry, {"busybox": 1}, never_built, discarded)
    pooled = Sandbox("w1", "node1", "busybox", 1.0, terminal=new_terminal(terminals), runtime_id="w1")
    capacity.warm.ready["busybox"].append(pooled)
    provisioner = Recording()
    no_groups = Groups(registry, cast(SandboxNetwork, None), cast(RuncRuntime, None))  # the request names none
    sandboxes = Sandboxes(
        "busybox",
        registry,
        cast(ImageStore, UnreadStore()),
        capacity,
        cast(Provisioner, provisioner),
        no_groups,
        Recordings(Path("/nonexistent"), 2**20, "nobody", registry),  # the request asks for no recording
    )
    reply = await sandboxes.create({"op": "create", "id": "abcdefgh12", "hostname": "node1"})
    assert reply["created"] and reply["sandbox"]["runtime_id"] == "w1" and reply["sandbox"]["image"] == "busybox"
    assert registry.sandboxes["abcdefgh12"].terminal is pooled.terminal
    assert provisioner.recorded == ["abcdefgh12"]


class HeldGroups:
    """A session's network whose joining waits for the test: a create held half made."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def joined(self, sandbox: Sandbox) -> None:
        await self.gate.wait()


async def test_a_repeated_create_of_a_sandbox_being_made_answers_once_it_is_made(terminals: list[Terminal]) -> None:
    registry = Registry()
    capacity = Capacity(4, registry, {"busybox": 1}, never_built, discarded)
    pooled = Sandbox("w1", "node1", "busybox", 1.0, terminal=new_terminal(terminals), runtime_id="w1")
    capacity.warm.ready["busybox"].append(pooled)
    groups = HeldGroups()
    sandboxes = Sandboxes(
        "busybox",
        registry,
        cast(ImageStore, UnreadStore()),
        capacity,
        cast(Provisioner, Recording()),
        cast(Groups, groups),
        Recordings(Path("/nonexistent"), 2**20, "nobody", registry),
    )
    request = {"op": "create", "id": "abcdefgh12", "hostname": "node1"}
    first = asyncio.create_task(sandboxes.create(request))
    await asyncio.sleep(0.01)
    again = asyncio.create_task(sandboxes.create(request))  # the worker's, after a viewer's early create
    await asyncio.sleep(0.05)
    assert not again.done(), "a repeated create answered while the sandbox was half made"
    groups.gate.set()
    made, repeated = await first, await again
    assert made["created"] and not repeated["created"]
    assert repeated["sandbox"]["runtime_id"] == "w1"


class SlowStore:
    """An image store that takes a while to read (the agent reads it in a thread)."""

    def get(self, name: str) -> Image:
        time.sleep(0.05)
        return Image(name, Path("/nonexistent"), [], ["sh"], [], "/", 0)


class Starting(Recording):
    """A provisioner that records each cold start it is asked for."""

    def __init__(self, terminals: list[Terminal]) -> None:
        super().__init__()
        self.terminals = terminals
        self.started: list[str] = []

    async def start(self, sandbox: Sandbox, image: Image) -> None:
        self.started.append(sandbox.sandbox_id)
        await asyncio.sleep(0.05)
        sandbox.terminal = new_terminal(self.terminals)


async def test_two_cold_creates_of_one_sandbox_at_once_start_it_once(terminals: list[Terminal]) -> None:
    # A viewer's early create and the worker's, both while the image is read: before, both started
    # runc and one failed with "already exists on this host".
    registry = Registry()
    provisioner = Starting(terminals)
    sandboxes = Sandboxes(
        "busybox",
        registry,
        cast(ImageStore, SlowStore()),
        Capacity(4, registry, {}, never_built, discarded),
        cast(Provisioner, provisioner),
        Groups(registry, cast(SandboxNetwork, None), cast(RuncRuntime, None)),
        Recordings(Path("/nonexistent"), 2**20, "nobody", registry),
    )
    request = {"op": "create", "id": "abcdefgh12", "hostname": "node1"}
    replies = await asyncio.gather(sandboxes.create(request), sandboxes.create(request))
    assert provisioner.started == ["abcdefgh12"]
    assert sorted(reply["created"] for reply in replies) == [False, True]
