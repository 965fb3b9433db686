"""Keystrokes and output under pressure: several typists at once, and a client that stops reading.

Small versions of what ``make bench`` measures at scale (bench/crowd.py, bench/terminals.py).
"""

from __future__ import annotations

import asyncio

from bench import crowd, terminals
from tests.stack import Stack


async def open_client(stack: Stack) -> terminals.TerminalClient:
    session = await asyncio.to_thread(stack.start_session)
    return await terminals.PlaygroundClient.open(stack.terminal_url(session))


async def test_five_terminals_typing_at_once_lose_and_reorder_no_keystroke(stack: Stack) -> None:
    result = await crowd.crowd(lambda _: open_client(stack), terminals=5, rate=25, seconds=2)
    assert result["problems"] == []
    assert result["echoed"] == result["keystrokes"] == 250


async def test_a_client_that_stops_reading_holds_the_shell_not_the_servers_memory(stack: Stack) -> None:
    client = await open_client(stack)
    await client.expect(terminals.PROMPT, 20)
    result = await terminals.stopped_reader(client, terminals.stack_server_pids(stack), seconds=4)
    assert result["drained"], result
    assert result["rss_growth_mib"] < 32, result
    # An unbounded server would have taken about a gigabyte of base64 by now.
    assert result["received_mib"] < 200, result
    await client.type("echo $((6*7))''\n")
    await client.expect(b"42\r\n", 10)
    await client.close()
