"""The launcher restarts a part that dies, and the whole keeps working; it gives up on a part
that keeps dying. One stack serves the module (a reaper every second); each test kills a part
with SIGKILL, as the OOM killer or a crash would.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from playground.launcher.checks import http_answers
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError
from tests.stack import Stack, Terminal
from tests.waiting import eventually, eventually_async


@pytest.fixture(scope="module")
def restart_stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_REAPER_INTERVAL="1") as running:
        yield running
    assert running.proc is not None and running.proc.returncode == 0, (
        f"after its parts were restarted, Ctrl-C must still stop cleanly:\n{running.log_tail()}"
    )


def kill(stack: Stack, part: str) -> int:
    """SIGKILL the part and wait until the launcher has started a new one; returns the new pid."""
    return stack.restart_part(part, timeout=15)


def log_since(stack: Stack, offset: int) -> str:
    return stack.log_path.read_bytes()[offset:].decode(errors="replace")


def restart_announced(stack: Stack, part: str, since: int) -> int:
    """Wait for the launcher to say it restarts ``part`` (a death after ``since`` in the log);
    returns where in the log that line ends."""
    said = f"[launcher] {part} exited unexpectedly (status -9); restarting it in ".encode()
    eventually(lambda: said in stack.log_path.read_bytes()[since:], "the launcher's word", 5)
    log = stack.log_path.read_bytes()
    return log.index(b"\n", log.index(said, since))


async def answering(stack: Stack, timeout: float = 30) -> None:
    """Wait until the web tier and the agent answer again."""
    problems = ["none yet"]

    async def answers() -> bool:
        try:
            status = stack.request("GET", "/api/schema/").status
            if status != 200:
                problems.append(f"the web tier answered {status}")
                return False
            await AgentClient(stack.data_dir / "run" / "agent.sock").request("ping")
            return True
        except (AgentError, OSError) as exc:
            problems.append(str(exc))
            return False

    await eventually_async(
        answers, "the web tier and the agent answer", timeout, 0.2, explain=lambda: f"last problem: {problems[-1]}"
    )


async def prompt(stack: Stack) -> tuple[dict[str, Any], Terminal]:
    """A new session with its shell's prompt on screen."""
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return session, terminal


async def assert_everything_works(stack: Stack, since: int) -> None:
    """A new session gets a prompt and runs a command; DELETE destroys it (worker and agent);
    the reaper runs again after ``since`` in the log (beat, through Redis, to the worker)."""
    await answering(stack)
    session, terminal = await prompt(stack)
    assert (await terminal.run("echo alive")).strip() == "alive"
    await terminal.close()
    stack.end_session(session)
    eventually(
        lambda: (
            stack.request(
                "GET", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
            ).json()["state"]
            == "ended"
        ),
        "the end of the session",
        20,
    )
    reaped = re.compile(r"Task playground\.sandboxes\.tasks\.reap_expired\[[-0-9a-f]+\] succeeded")
    eventually(lambda: reaped.search(log_since(stack, since)), "a reaper pass after the restart", 20)


@pytest.mark.parametrize(
    "part", ["worker", "beat", "redis", "daphne", "ports", "registry", "registry-push", "registry-front"]
)
async def test_a_killed_part_is_started_again_and_a_new_session_works(restart_stack: Stack, part: str) -> None:
    since = restart_stack.log_path.stat().st_size
    kill(restart_stack, part)
    await assert_everything_works(restart_stack, restart_announced(restart_stack, part, since))
    if part == "ports":
        ready = f"http://127.0.0.1:{restart_stack.ports_port}/ports/ready"
        eventually(lambda: http_answers(ready), "the restarted port proxy answers", 20)
    if part == "registry":
        store = f"http://127.0.0.1:{restart_stack.env['PLAYGROUND_REGISTRY_STORE_PORT']}/v2/"
        eventually(lambda: http_answers(store), "the restarted registry mirror's store answers", 20)
    if part == "registry-push":
        pushes = f"http://127.0.0.1:{restart_stack.env['PLAYGROUND_REGISTRY_PUSH_PORT']}/v2/"
        eventually(lambda: http_answers(pushes), "the restarted session registry answers", 20)
    restart_stack.assert_clean_host()


async def fate(stack: Stack, session: dict[str, Any]) -> str:
    """What became of a session whose agent was killed: ``survived`` when a new terminal of it
    runs a command, else the reason it ended with (its viewer is told)."""
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.run("echo survived", timeout=30)
        await terminal.close()
        return "survived"
    except websockets.ConnectionClosed:
        exits = [event for event in terminal.events if event["type"] == "exit"]
        assert exits and terminal.ws.close_code == 4410, (terminal.events, terminal.ws.close_code)
        return exits[-1]["reason"]


async def test_a_killed_agent_is_started_again_without_ending_every_session(restart_stack: Stack) -> None:
    stack = restart_stack
    session, terminal = await prompt(stack)  # alive while the agent dies
    since = stack.log_path.stat().st_size
    started = stack.log_path.read_text().count("[manage startup]")  # ends an earlier run's sessions
    assert started, "the launcher ran no 'manage.py startup'"
    kill(stack, "agent")
    await assert_everything_works(stack, restart_announced(stack, "agent", since))
    assert stack.log_path.read_text().count("[manage startup]") == started
    # Without a terminal keeper the new agent removes the old sandboxes and the reaper ends their
    # sessions as host_lost; with one, the session lives on. Either way nothing is left behind.
    assert await fate(stack, session) in ("survived", "host_lost")
    await terminal.close()
    stack.end_started_sessions()
    stack.assert_clean_host()


def test_a_part_that_keeps_dying_makes_the_launcher_give_up_and_stop_everything() -> None:
    stack = Stack.create()
    try:
        stack.start()
        for _ in range(5):  # restarted after 0.5, 1, 2, 4 and 8 s
            kill(stack, "beat")
        beat = stack.pid_of("beat")
        assert beat is not None
        os.kill(beat, signal.SIGKILL)  # the sixth death within a minute
        assert stack.proc is not None
        assert stack.proc.wait(60) == 1
    finally:
        stack.stop(keep=True)
    log = stack.log_path.read_text()
    assert (
        "[launcher] beat exited 6 times within 60 s (last status -9); giving up on it and stopping everything." in log
    )
    assert "no sandbox is left running" in log
    left = stack.host_state()
    assert not any(left.values()), left
    eventually(lambda: not stack.service_processes(), "the end of every part", 20)
    shutil.rmtree(stack.data_dir)
