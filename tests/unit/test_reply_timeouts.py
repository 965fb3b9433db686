"""How long the agent's client waits for a reply (sandbox.wire.client.reply_timeout): REPLY_TIMEOUT,
plus what the request lets the agent take. A template's setup may run for minutes (its ``timeout``),
so a reply that comes after REPLY_TIMEOUT but within the script's time must still be read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.wire import client as client_module
from sandbox.wire import protocol
from sandbox.wire.client import AgentClient, AgentUnavailable, reply_timeout

ANSWER_AFTER = 0.6  # seconds the slow agent takes to reply


@pytest.fixture
async def slow_agent(tmp_path: Path) -> AsyncIterator[Path]:
    """A unix socket that answers every request ANSWER_AFTER seconds after reading it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await protocol.read_frame(reader)
        await asyncio.sleep(ANSWER_AFTER)
        writer.write(protocol.encode_reply({"code": 0}))
        await writer.drain()
        writer.close()

    path = tmp_path / "agent.sock"
    server = await asyncio.start_unix_server(answer, path=str(path))
    yield path
    server.close()
    await server.wait_closed()


def test_the_reply_timeout_adds_an_attachs_wait_and_a_runs_timeout() -> None:
    base = client_module.REPLY_TIMEOUT
    assert reply_timeout({"op": "ping"}) == base
    assert reply_timeout({"op": "attach", "wait": 5}) == base + 5
    assert reply_timeout({"op": "run", "script": "true", "timeout": 200}) == base + 200


async def test_a_run_whose_reply_comes_after_reply_timeout_but_within_its_scripts_time_is_read(
    slow_agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REPLY_TIMEOUT", ANSWER_AFTER / 3)
    reply = await AgentClient(slow_agent).request("run", sandbox="s", script="sleep 1", timeout=ANSWER_AFTER * 2)
    assert reply["code"] == 0


async def test_a_request_without_time_of_its_own_still_gives_up_after_reply_timeout(
    slow_agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REPLY_TIMEOUT", ANSWER_AFTER / 3)
    with pytest.raises(AgentUnavailable):
        await AgentClient(slow_agent).request("ping")
