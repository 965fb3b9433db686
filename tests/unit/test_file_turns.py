"""The bounds of the agent's file ops (sandbox.runtime.files.FileMover): a transfer over the host's
bound waits its turn in arrival order, and is refused ``host_busy`` only after the wait; a transfer
over its sandbox's bound is refused ``busy`` at once; a waiter cancelled (its client gone) gives
back its count and its turn. An upload is handed its pipe only once its turn came. The transfers
themselves are held by the test instead of running runc (tests/integration/test_files.py moves
real ones)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.runtime import files
from sandbox.runtime.files import FileMover, Transfer
from sandbox.runtime.labscripts import CommandRunner
from sandbox.wire import client
from sandbox.wire.protocol import AgentError


class HeldTransfers(FileMover):
    """FileMover's bounds around transfers that end when the test opens their gate: the path of a
    transfer names it (a download's path, an upload's path)."""

    def __init__(self, per_agent: int, host_wait: float = 5.0) -> None:
        commands = CommandRunner(Path("/nonexistent"), Path("/nonexistent"), "pg-none")
        super().__init__(commands, per_agent=per_agent, host_wait=host_wait)
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.handed_over: list[str] = []  # uploads whose pipe was handed to their caller

    async def _exec(
        self,
        runtime_id: str,
        script: str,
        args: list[str],
        stdin: int | None,
        stdout: int | None,
        timeout: float,
        reader: tuple[asyncio.Task[int], int] | None = None,
    ) -> Transfer:
        name = args[0]
        if stdout is not None:
            os.close(stdout)  # as the real one does: the reader sees the end
        self.started.append(name)
        await self.gates.setdefault(name, asyncio.Event()).wait()
        return Transfer(0, name)

    def get_file(self, sandbox: str, name: str) -> asyncio.Task[tuple[dict[str, Any], int]]:
        self.gates.setdefault(name, asyncio.Event())
        return asyncio.create_task(self.get(sandbox, name, None, 100))

    def put_file(self, sandbox: str, name: str) -> asyncio.Task[dict[str, Any]]:
        self.gates.setdefault(name, asyncio.Event())

        def hand_over(fd: int) -> None:
            self.handed_over.append(name)

        return asyncio.create_task(self.put(sandbox, name, None, 0, hand_over))

    def free_turns(self) -> int:
        """Turns no transfer holds (the semaphore's value; nothing may wait on it when asked)."""
        return self.turns.free_turns()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def finished(task: asyncio.Task[tuple[dict[str, Any], int]]) -> str:
    reply, memfd = await task
    os.close(memfd)
    return str(reply["path"])


async def test_transfers_over_the_hosts_bound_wait_their_turn_and_start_in_arrival_order() -> None:
    mover = HeldTransfers(per_agent=2)
    tasks = [mover.get_file(f"sandbox-{name}", name) for name in "abcd"]
    await settle()
    assert mover.started == ["a", "b"]
    assert mover.turns.running == {f"sandbox-{name}": 1 for name in "abcd"}
    mover.gates["b"].set()
    await settle()
    assert mover.started == ["a", "b", "c"]
    mover.gates["a"].set()
    await settle()
    assert mover.started == ["a", "b", "c", "d"]
    for gate in mover.gates.values():
        gate.set()
    assert [await finished(task) for task in tasks] == ["a", "b", "c", "d"]
    assert mover.turns.running == {} and mover.free_turns() == 2


async def test_a_transfer_that_gets_no_turn_within_the_wait_is_refused_host_busy_and_leaves_no_count() -> None:
    mover = HeldTransfers(per_agent=1, host_wait=0.2)
    holding = mover.get_file("sandbox-a", "a")
    await settle()
    with pytest.raises(AgentError) as refused:
        await mover.get("sandbox-b", "b", None, 100)
    assert refused.value.code == "host_busy"
    assert "moving 1 files at once for 0 s" in refused.value.message
    assert mover.turns.running == {"sandbox-a": 1}
    mover.gates["a"].set()
    assert await finished(holding) == "a"
    mover.gates["c"] = asyncio.Event()
    mover.gates["c"].set()
    assert await finished(mover.get_file("sandbox-b", "c")) == "c"  # the refused transfer kept no turn
    assert mover.turns.running == {} and mover.free_turns() == 1


async def test_an_upload_is_handed_its_pipe_only_once_its_turn_came_and_a_refused_one_never() -> None:
    mover = HeldTransfers(per_agent=1, host_wait=0.2)
    holding = mover.get_file("sandbox-a", "a")
    waiting = mover.put_file("sandbox-b", "/root/up")
    await settle()
    assert mover.handed_over == [] and mover.started == ["a"]
    with pytest.raises(AgentError) as refused:
        await waiting
    assert refused.value.code == "host_busy"
    assert mover.handed_over == [], "told to send its bytes, then refused"
    mover.gates["a"].set()
    await finished(holding)
    mover.gates["/root/up"].set()
    assert await mover.put_file("sandbox-b", "/root/up") == {"path": "/root/up", "size": 0}
    assert mover.handed_over == ["/root/up"]


async def test_a_third_transfer_of_one_sandbox_is_refused_busy_at_once_even_while_one_of_its_transfers_waits() -> None:
    mover = HeldTransfers(per_agent=1)
    first, waiting = mover.get_file("sandbox-a", "a"), mover.put_file("sandbox-a", "b")
    await settle()
    assert mover.started == ["a"] and mover.handed_over == []
    with pytest.raises(AgentError) as refused:
        await mover.get("sandbox-a", "c", None, 100)
    assert refused.value.code == "busy"
    mover.gates["a"].set()
    mover.gates["b"].set()
    assert await finished(first) == "a"
    assert (await waiting)["path"] == "b"
    assert mover.turns.running == {} and mover.free_turns() == 1


async def test_a_cancelled_waiter_leaves_no_count_and_holds_no_turn() -> None:
    mover = HeldTransfers(per_agent=1)
    holding = mover.get_file("sandbox-a", "a")
    gone_get, gone_put = mover.get_file("sandbox-b", "b"), mover.put_file("sandbox-b", "c")
    after = mover.get_file("sandbox-c", "d")
    await settle()
    assert mover.turns.running == {"sandbox-a": 1, "sandbox-b": 2, "sandbox-c": 1}
    gone_get.cancel()
    gone_put.cancel()
    await settle()
    assert gone_get.cancelled() and gone_put.cancelled()
    assert mover.turns.running == {"sandbox-a": 1, "sandbox-c": 1}
    mover.gates["a"].set()
    await finished(holding)
    await settle()
    assert mover.started == ["a", "d"], "the turn went to the next waiter, not to the cancelled ones"
    mover.gates["d"].set()
    await finished(after)
    assert mover.turns.running == {} and mover.free_turns() == 1
    assert mover.handed_over == []


async def test_a_waiter_cancelled_just_as_its_turn_comes_is_cancelled_and_gives_the_turn_back() -> None:
    mover = HeldTransfers(per_agent=1)
    holding = mover.get_file("sandbox-a", "a")
    waiter = mover.get_file("sandbox-b", "b")
    await settle()
    mover.gates["a"].set()
    while not holding.done():  # the holder ends and hands its turn to the waiter...
        await asyncio.sleep(0)
    waiter.cancel()  # ...whose client goes before it runs
    await asyncio.wait([waiter], timeout=1)
    assert waiter.cancelled(), "the cancellation was lost: the file would be moved for no one"
    assert mover.started == ["a"]
    assert mover.turns.running == {} and mover.free_turns() == 1
    await finished(holding)


def test_the_clients_timeouts_cover_a_file_ops_wait_for_its_turn_and_its_deadline() -> None:
    """An upload's first reply (its pipe) comes after at most HOST_WAIT; a download's result after
    HOST_WAIT, GET_TIMEOUT and the cleaning up (tens of seconds at most); an upload's result after
    PUT_TIMEOUT from its pipe, the wait being over by then."""
    assert client.REPLY_TIMEOUT >= files.HOST_WAIT + 20
    assert client.FILE_TIMEOUT >= files.HOST_WAIT + files.GET_TIMEOUT + 30
    assert client.FILE_TIMEOUT >= files.PUT_TIMEOUT + 20
