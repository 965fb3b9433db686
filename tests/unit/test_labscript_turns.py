"""The bounds of the agent's ``run`` op (sandbox.runtime.labscripts.CommandRunner): a run over the
host's bound waits its turn in arrival order, and is refused ``host_busy`` only after the wait; a
run over its sandbox's bound is refused ``busy`` at once. The runs themselves are held by the test
instead of running runc (tests/integration/test_run_op.py runs real ones)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.runtime.labscripts import CommandRunner, RunResult
from sandbox.wire.protocol import AgentError


class HeldRuns(CommandRunner):
    """CommandRunner's bounds around runs that end when the test opens their gate."""

    def __init__(self, per_agent: int, host_wait: float = 5.0) -> None:
        super().__init__(
            Path("/nonexistent"), Path("/nonexistent"), "pg-none", per_agent=per_agent, host_wait=host_wait
        )
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    async def _run(self, runtime_id: str, script: str, timeout: float, limit: int) -> RunResult:
        self.started.append(script)
        await self.gates.setdefault(script, asyncio.Event()).wait()
        return RunResult(0, script, False, False, 0.0)

    def start(self, sandbox: str, script: str) -> asyncio.Task[RunResult]:
        self.gates.setdefault(script, asyncio.Event())
        return asyncio.create_task(self.run(sandbox, script, 10, 100))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_runs_over_the_hosts_bound_wait_their_turn_and_start_in_arrival_order() -> None:
    runner = HeldRuns(per_agent=2)
    tasks = [runner.start(f"sandbox-{name}", name) for name in "abcd"]
    await settle()
    assert runner.started == ["a", "b"]
    runner.gates["b"].set()
    await settle()
    assert runner.started == ["a", "b", "c"]
    runner.gates["a"].set()
    await settle()
    assert runner.started == ["a", "b", "c", "d"]
    for gate in runner.gates.values():
        gate.set()
    assert [result.output for result in await asyncio.gather(*tasks)] == ["a", "b", "c", "d"]
    assert runner.turns.running == {}


async def test_a_run_that_gets_no_turn_within_the_wait_is_refused_host_busy_and_leaves_no_count() -> None:
    runner = HeldRuns(per_agent=1, host_wait=0.2)
    holding = runner.start("sandbox-a", "a")
    await settle()
    with pytest.raises(AgentError) as refused:
        await runner.run("sandbox-b", "b", 10, 100)
    assert refused.value.code == "host_busy"
    assert "1 scripts at once" in refused.value.message
    assert runner.turns.running == {"sandbox-a": 1}
    runner.gates["a"].set()
    await holding
    runner.gates["c"] = asyncio.Event()
    runner.gates["c"].set()
    assert (await runner.run("sandbox-b", "c", 10, 100)).output == "c"  # the refused run kept no turn


async def test_a_third_run_of_one_sandbox_is_refused_busy_at_once_even_while_one_of_its_runs_waits() -> None:
    runner = HeldRuns(per_agent=1)
    first, waiting = runner.start("sandbox-a", "a"), runner.start("sandbox-a", "b")
    await settle()
    assert runner.started == ["a"]
    with pytest.raises(AgentError) as refused:
        await runner.run("sandbox-a", "c", 10, 100)
    assert refused.value.code == "busy"
    runner.gates["a"].set()
    runner.gates["b"].set()
    assert [result.output for result in await asyncio.gather(first, waiting)] == ["a", "b"]


async def test_a_run_cancelled_just_as_its_turn_comes_is_cancelled_and_gives_the_turn_back() -> None:
    runner = HeldRuns(per_agent=1)
    holding = runner.start("sandbox-a", "a")
    waiter = runner.start("sandbox-b", "b")
    await settle()
    runner.gates["a"].set()
    while not holding.done():  # the holder ends and hands its turn to the waiter...
        await asyncio.sleep(0)
    waiter.cancel()  # ...whose client goes before it runs
    await asyncio.wait([waiter], timeout=1)
    assert waiter.cancelled(), "the cancellation was lost: the check would run for no one"
    assert runner.started == ["a"]
    assert runner.turns.running == {} and runner.turns.free_turns() == 1
