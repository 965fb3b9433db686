"""Visitors' shells outlive the agent: the keeper holds their terminals, the next agent adopts them.

One stack of their own (a reconciliation every second), whose launcher restarts a part that dies.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.stack import Stack, Terminal
from tests.waiting import eventually, eventually_async

CLOSE_UNAVAILABLE = 4503


@pytest.fixture(scope="module")
def restart_stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_RECONCILE_INTERVAL="1", PLAYGROUND_REAPER_INTERVAL="1") as running:
        yield running


def restart(stack: Stack, part: str, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
    """Send ``sig`` to ``part`` and wait until the launcher runs a new one; returns its pid."""
    new = stack.restart_part(part, sig, timeout)
    if part == "agent":
        eventually(lambda: answers(stack), "the restarted agent accepts connections", 30, explain=stack.log_tail)
    return new


def answers(stack: Stack) -> bool:
    """Whether the agent accepts connections (it listens only once it has adopted every sandbox)."""
    with socket.socket(socket.AF_UNIX) as conn:
        return conn.connect_ex(str(stack.data_dir / "run" / "agent.sock")) == 0


def state_of(stack: Stack, session: dict[str, Any]) -> str:
    headers = {"Authorization": f"Session {session['key']}"}
    return stack.request("GET", f"/api/sessions/{session['id']}/", headers=headers).json()["state"]


async def shell_with_history(stack: Stack) -> tuple[dict[str, Any], Terminal, str]:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ")
    # A shell variable only this shell process has, with its pid: the same answer later proves
    # it is the same process (in its pid namespace, the shell is always pid 1).
    identity = (await terminal.run(f"MARK={uuid.uuid4().hex}; echo $MARK $$")).strip()
    await terminal.run("echo written-before-the-restart")
    return session, terminal, identity


async def reconnect(stack: Stack, session: dict[str, Any], old: Terminal) -> Terminal:
    """What the page does when its websocket drops: connect again (the screen is replayed)."""
    assert await old.closed(timeout=30) == CLOSE_UNAVAILABLE
    problems = ["none yet"]

    async def attempt() -> Terminal | None:
        terminal = await Terminal.open(stack.terminal_url(session))
        try:
            await terminal.expect("written-before-the-restart", timeout=5)
            return terminal
        except (AssertionError, OSError, websockets.ConnectionClosed) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
            await terminal.close()
            return None

    terminal = await eventually_async(
        attempt, "a new terminal replaying the screen", 30, explain=lambda: f"last problem: {problems[-1]}"
    )
    assert terminal is not None  # eventually_async returns only a true value
    return terminal


async def test_a_shell_keeps_its_pid_and_its_screen_when_the_agent_is_killed(restart_stack: Stack) -> None:
    session, terminal, identity = await shell_with_history(restart_stack)
    restart(restart_stack, "agent", signal.SIGKILL)
    terminal = await reconnect(restart_stack, session, terminal)
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    time.sleep(3)  # waiting is the point: several reaper passes must not take the session for lost
    assert state_of(restart_stack, session) == "active"
    assert (await terminal.run("echo still $MARK $$")).strip() == f"still {identity}"
    await terminal.close()


async def test_a_restart_in_place_with_sigusr1_keeps_every_shell(restart_stack: Stack) -> None:
    session, terminal, identity = await shell_with_history(restart_stack)
    restart(restart_stack, "agent", signal.SIGUSR1)
    assert b"left to the next agent" in restart_stack.log_path.read_bytes()
    terminal = await reconnect(restart_stack, session, terminal)
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    await terminal.close()


async def test_a_keeper_restart_then_an_agent_restart_still_keeps_the_shell(restart_stack: Stack) -> None:
    session, terminal, identity = await shell_with_history(restart_stack)
    kept = restart_stack.kept_terminals()
    assert kept, "the keeper holds no terminal before its restart"
    restart(restart_stack, "keeper", signal.SIGKILL)  # the agent's own copies keep the shell alive
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    eventually(  # the keeper holding them, not the agent's log line, which comes before each hand-over
        lambda: restart_stack.kept_terminals() >= kept,
        f"the agent hands its terminals {sorted(kept)} to the new keeper",
        30,
        explain=restart_stack.log_tail,
    )
    restart(restart_stack, "agent", signal.SIGKILL)
    terminal = await reconnect(restart_stack, session, terminal)
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    await terminal.close()


async def test_after_agent_restarts_ending_every_session_leaves_nothing(restart_stack: Stack) -> None:
    session, terminal, _identity = await shell_with_history(restart_stack)
    restart(restart_stack, "agent", signal.SIGKILL)
    await terminal.close()
    restart_stack.end_started_sessions()
    eventually(lambda: state_of(restart_stack, session), "the end of the session", 30, until=lambda s: s == "ended")
    restart_stack.assert_clean_host()
