"""A connection handed on after the agent's reply (``AgentClient.connect_port``, and ``attach`` over
TLS): what the agent sends with or soon after the reply, and its end, reach the next protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.wire import protocol
from sandbox.wire.client import AgentClient, _ReplyFirst
from sandbox.wire.protocol import AgentError
from tests.hostkit import Collected


async def agent_saying(path: Path, *chunks: bytes) -> asyncio.AbstractServer:
    """A fake agent that reads the request, sends ``chunks`` (each its own write, a loop turn
    apart), then closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await protocol.read_frame(reader)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(path))


async def test_bytes_with_the_reply_and_after_it_and_the_end_all_reach_the_next_protocol(tmp_path: Path) -> None:
    reply = protocol.encode_reply({"address": "10.89.0.2", "port": 22})
    server = await agent_saying(tmp_path / "a.sock", reply + b"SSH-2.0-banner\r\n", b"more", b"and the rest")
    try:
        _transport, relayed = await AgentClient(tmp_path / "a.sock").connect_port("0" * 32, 22, Collected)
        assert isinstance(relayed, Collected)
        await asyncio.wait_for(relayed.ended, 5)
        assert bytes(relayed.data) == b"SSH-2.0-banner\r\nmoreand the rest"
    finally:
        server.close()


async def test_a_refusal_is_the_agents_error_and_hands_nothing_on(tmp_path: Path) -> None:
    server = await agent_saying(tmp_path / "a.sock", protocol.encode_refusal("not_listening", "nothing on 22"))
    made: list[Collected] = []

    def factory() -> Collected:
        made.append(Collected())
        return made[-1]

    try:
        with pytest.raises(AgentError) as refused:
            await AgentClient(tmp_path / "a.sock").connect_port("0" * 32, 22, factory)
        assert refused.value.code == "not_listening"
        assert all(not each.data for each in made)
    finally:
        server.close()


async def test_what_comes_after_the_reply_is_kept_until_the_connection_is_handed_on_and_so_is_its_end() -> None:
    """Bytes may arrive between the reply's parsing and the hand-over (the waiting task resumes a few
    loop turns later): the hand-over takes them all then, and learns that the connection ended."""
    first = _ReplyFirst()
    first.connection_made(None)  # type: ignore[arg-type]  # (no transport is needed to read)
    first.data_received(protocol.encode_reply({"terminal": 0}) + b"replay")
    assert await first.reply == {"ok": True, "terminal": 0}
    first.data_received(b" and live output")
    first.connection_lost(None)
    assert first.after_reply() == b"replay and live output"
    assert first.lost
