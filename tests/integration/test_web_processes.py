"""Several web servers (PLAYGROUND_WEB_PROCESSES, docs/configuration.md): Daphne processes accepting
on one socket the launcher holds, each serving whichever requests and websockets it accepts, with
everything they share in the database and Redis. One killed, the other serves on at once and the
launcher starts it again on the same socket."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack, Terminal
from tests.waiting import eventually


@pytest.fixture(scope="module")
def web_stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_WEB_PROCESSES="2") as running:
        yield running


async def answers(stack: Stack, session: dict[str, Any]) -> None:
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=30)
        assert "answer-42" in await terminal.run("echo answer-$((6 * 7))")
    finally:
        await terminal.close()


async def test_two_web_servers_serve_one_site_and_one_killed_is_replaced_while_the_other_serves_on(
    web_stack: Stack,
) -> None:
    stack = web_stack
    first, second = stack.pids_of("daphne")
    parts = {line.split("]")[0] + "]" for line in stack.log_path.read_text().splitlines() if line.startswith("[")}
    assert {"[daphne]", "[daphne-2]"} <= parts
    sessions = [stack.start_session() for _ in range(2)]
    await asyncio.gather(*(answers(stack, session) for session in sessions))  # on either, or both
    os.kill(first, signal.SIGKILL)
    for _ in range(20):  # at once: the socket is the launcher's, and the other accepts on it
        assert stack.request("GET", "/api/schema/").status == 200
    await answers(stack, sessions[0])
    eventually(
        lambda: len(pids := stack.pids_of("daphne")) == 2 and first not in pids and second in pids,
        "the killed web server started again beside the other",
        30,
    )
    await answers(stack, sessions[1])
    for session in sessions:
        stack.end_session(session)
