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

CLOSE_UNAVAILABLE = 4503


@pytest.fixture(scope="module")
def restart_stack() -> Iterator[Stack]:
    running = Stack.create(PLAYGROUND_RECONCILE_INTERVAL="1", PLAYGROUND_REAPER_INTERVAL="1")
    running.start()
    yield running
    running.end_started_sessions()
    running.stop()


def restart(stack: Stack, part: str, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
    """Send ``sig`` to ``part`` and wait until the launcher runs a new one; returns its pid."""
    new = stack.restart_part(part, sig, timeout)
    if part == "agent":
        wait_until(lambda: answers(stack), f"the restarted agent did not get ready:\n{stack.log_tail()}")
    return new


def answers(stack: Stack) -> bool:
    """Whether the agent accepts connections (it listens only once it has adopted every sandbox)."""
    with socket.socket(socket.AF_UNIX) as conn:
        return conn.connect_ex(str(stack.data_dir / "run" / "agent.sock")) == 0


def state_of(stack: Stack, session: dict[str, Any]) -> str:
    headers = {"Authorization": f"Session {session['key']}"}
    return stack.request("GET", f"/api/sessions/{session['id']}/", headers=headers).json()["state"]


def wait_until(condition, message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


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
    deadline = time.monotonic() + 30
    while True:
        terminal = await Terminal.open(stack.terminal_url(session))
        try:
            await terminal.expect("written-before-the-restart", timeout=5)
            return terminal
        except (AssertionError, OSError, websockets.ConnectionClosed):
            await terminal.close()
            assert time.monotonic() < deadline, "the terminal could not be reconnected"


async def test_a_shell_keeps_its_pid_and_its_screen_when_the_agent_is_killed(restart_stack: Stack) -> None:
    session, terminal, identity = await shell_with_history(restart_stack)
    restart(restart_stack, "agent", signal.SIGKILL)
    terminal = await reconnect(restart_stack, session, terminal)
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    time.sleep(3)  # several reaper passes: the session must not be taken for lost
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
    restart(restart_stack, "keeper", signal.SIGKILL)  # the agent's own copies keep the shell alive
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    wait_until(
        lambda: b"handing the terminal of" in restart_stack.log_path.read_bytes(),
        "the agent did not hand its terminals to the new keeper",
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
    wait_until(lambda: state_of(restart_stack, session) == "ended", "the session did not end")
    assert restart_stack.wait_for_clean_host() == {key: [] for key in restart_stack.host_state()}
