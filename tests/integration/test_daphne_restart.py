"""Visitors' shells outlive the web tier: when Daphne dies, the launcher starts a new one, the
terminal's client connects again, the agent replays the screen, and the shell is the same process.

One stack of its own, whose launcher restarts a part that dies (issue #5, acceptance 3).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.integration.test_agent_restart import shell_with_history
from tests.stack import Stack, Terminal
from tests.waiting import eventually_async

# Close codes after which the browser gives up; a web tier restart must not send one of them.
FINAL_CLOSE_CODES = {1000, 4403, 4404, 4410}


@pytest.fixture(scope="module")
def web_restart_stack() -> Iterator[Stack]:
    with Stack.running() as running:
        yield running


async def reconnect_after_web_restart(stack: Stack, session: dict[str, Any], old: Terminal) -> Terminal:
    """What the page does when Daphne goes away: see the socket end (not for good), connect
    again until the new Daphne answers, and get the screen replayed."""
    code = await old.closed(timeout=30)
    assert code not in FINAL_CLOSE_CODES, f"the web tier's end closed the terminal for good ({code})"
    problems = ["none yet"]

    async def attempt() -> Terminal | None:
        try:
            terminal = await Terminal.open(stack.terminal_url(session))
        except OSError as exc:  # the new Daphne is not listening yet
            problems.append(f"no new Daphne answered: {exc}")
            return None
        try:
            await terminal.expect("written-before-the-restart", timeout=10)
            return terminal
        except (AssertionError, websockets.ConnectionClosed) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
            await terminal.close()
            return None

    terminal = await eventually_async(
        attempt,
        "a new terminal replaying the screen",
        60,
        0.2,
        explain=lambda: f"last problem: {problems[-1]}\n{stack.log_tail()}",
    )
    assert terminal is not None  # eventually_async returns only a true value
    return terminal


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_shell_keeps_its_pid_and_its_screen_when_daphne_restarts(
    web_restart_stack: Stack, sig: signal.Signals
) -> None:
    stack = web_restart_stack
    session, terminal, identity = await shell_with_history(stack)
    stack.restart_part("daphne", sig)
    terminal = await reconnect_after_web_restart(stack, session, terminal)
    assert (await terminal.run("echo $MARK $$")).strip() == identity
    assert (await terminal.run("echo $((6*7))")).strip() == "42"
    await terminal.close()
    stack.end_session(session)
