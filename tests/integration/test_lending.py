"""The agent lends the reading of a PTY to its only viewer (see ``sandbox/pty/terminal.py``).

Driven at the agent's socket with :class:`sandbox.wire.client.AgentClient`, as the web tier does:
only one process ever reads a PTY, so output is neither lost nor repeated when the reading
moves between the agent and a viewer, and the replay holds what a lent viewer read.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import Kind
from sandbox.wire.stream import TerminalStream
from tests.stack import Stack
from tests.waiting import eventually_async


class Viewer:
    """One attached stream and everything it received."""

    def __init__(self, stream: TerminalStream) -> None:
        self.stream = stream
        self.output = bytearray()
        self.events: list[dict[str, Any]] = []
        self.ended = False
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while (frame := await self.stream.read()) is not None:
            kind, payload = frame
            if kind == Kind.DATA:
                self.output += payload
            else:
                self.events.append(json.loads(payload))
        self.ended = True

    async def wait_for(self, condition: Any, what: str, timeout: float = 10) -> None:
        """Wait for ``condition()`` to be true; a failure shows the end of the output."""
        await eventually_async(condition, what, timeout, 0.01, explain=lambda: f"output: {bytes(self.output[-300:])!r}")

    async def type(self, text: str) -> None:
        await self.stream.send(Kind.DATA, text.encode())

    async def sees(self, marker: str, timeout: float = 10) -> None:
        await self.wait_for(lambda: marker.encode() in self.output, f"{marker!r} seen", timeout)

    async def close(self) -> None:
        await self.stream.close()
        self._task.cancel()


async def sandbox_of(stack: Stack) -> tuple[AgentClient, str]:
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    before = {s["id"] for s in (await agent.request("list"))["sandboxes"]}
    await asyncio.to_thread(stack.start_session)

    async def new_sandboxes() -> list[str]:
        return [s["id"] for s in (await agent.request("list"))["sandboxes"] if s["id"] not in before]

    new = await eventually_async(new_sandboxes, "a sandbox for the new session", timeout=30, interval=0.1)
    return agent, new[0]


async def lent_viewer(agent: AgentClient, sandbox_id: str) -> Viewer:
    viewer = Viewer(await agent.attach(sandbox_id, wait=30, pty=True))
    await viewer.sees("# ")
    await viewer.wait_for(lambda: viewer.stream.lent, "the reading lent to the only viewer")
    return viewer


async def test_a_second_viewer_takes_the_reading_back_then_gives_it_back_and_nothing_is_lost_or_repeated(
    stack: Stack,
) -> None:
    agent, sandbox_id = await sandbox_of(stack)
    first = await lent_viewer(agent, sandbox_id)
    await first.type("echo one-$((1+1))\n")
    await first.sees("one-2")
    second = Viewer(await agent.attach(sandbox_id, pty=True))
    await second.sees("one-2")  # the replay holds what the lent viewer read
    assert not first.stream.lent
    assert not second.stream.lent  # two viewers: the agent reads
    await first.type("echo two-$((2+1))\n")
    await first.sees("two-3")
    await second.sees("two-3")
    for viewer in (first, second):
        assert viewer.output.count(b"one-2") == 1 and viewer.output.count(b"two-3") == 1, bytes(viewer.output)
        assert viewer.output.index(b"one-2") < viewer.output.index(b"two-3")
    await second.close()  # as the old page of a reload leaves: the one left reads again
    await first.wait_for(lambda: first.stream.lent, "the reading lent again to the viewer left alone")
    await first.type("echo three-$((3+1))\n")
    await first.sees("three-4")
    assert first.output.count(b"three-4") == 1
    await first.close()
    stack.end_started_sessions()


async def test_after_the_lent_viewer_leaves_the_agent_reads_again_and_replays_what_it_read(stack: Stack) -> None:
    agent, sandbox_id = await sandbox_of(stack)
    first = await lent_viewer(agent, sandbox_id)
    await first.type("echo kept-$((3*3))\n")
    await first.sees("kept-9")
    await first.close()
    later = Viewer(await agent.attach(sandbox_id))  # no pty: everything goes through the agent
    await later.sees("kept-9")
    await later.type("echo then-$((4*4))\n")
    await later.sees("then-16")
    await later.close()
    stack.end_started_sessions()


async def test_a_shell_that_exits_while_a_viewer_reads_its_pty_still_reports_the_exit(stack: Stack) -> None:
    agent, sandbox_id = await sandbox_of(stack)
    viewer = await lent_viewer(agent, sandbox_id)
    await viewer.type("echo bye-$((5*5)); exit\n")
    await viewer.wait_for(lambda: any(e.get("type") == "exit" for e in viewer.events), "an exit event")
    assert b"bye-25" in viewer.output
    assert [e["reason"] for e in viewer.events if e.get("type") == "exit"] == ["shell_exited"]
    assert not viewer.stream.lent
    assert viewer.stream.pty is not None
    assert viewer.stream.pty.closed
    await viewer.close()
    stack.end_started_sessions()


async def test_a_lent_viewer_that_does_not_give_the_reading_back_is_hung_up_on(stack: Stack) -> None:
    agent, sandbox_id = await sandbox_of(stack)
    stuck = await lent_viewer(agent, sandbox_id)
    stuck.stream.receiver.control = None  # it no longer hears give_back (and keeps its reader)
    stuck.stream.lent = False  # ...but stops reading, so the test's own reads cannot race the agent's
    stuck.stream._update_reading()
    started = time.monotonic()
    newcomer = Viewer(await agent.attach(sandbox_id, pty=True))
    waited = time.monotonic() - started
    assert 1.5 < waited < 5, f"the attach waited {waited:.1f} s for the stuck viewer"
    await stuck.wait_for(lambda: stuck.ended, "the stuck viewer hung up on")
    await newcomer.sees("# ")
    await newcomer.wait_for(lambda: newcomer.stream.lent, "the reading lent to the newcomer, now alone")
    await newcomer.type("echo alive-$((6*7))\n")
    await newcomer.sees("alive-42")
    await newcomer.close()
    await stuck.close()
    stack.end_started_sessions()
