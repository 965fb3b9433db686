"""A file transfer waiting for its turn on a full host gives its place up when its client hangs up
(sandbox.agent.hangup), against the real agent: the host's turns are held by uploads whose bytes
never come, as a slow visitor's would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.runtime.files import PER_AGENT, PER_SANDBOX
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError
from tests.stack import Stack, Terminal
from tests.visitors import database

SANDBOXES = PER_AGENT // PER_SANDBOX + 1  # enough to hold every turn, and one more to wait


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


@pytest.fixture
async def sandbox_ids(stack: Stack) -> AsyncIterator[list[str]]:
    """The sandboxes of SANDBOXES running sessions, each at its shell's prompt."""
    sessions: list[dict[str, Any]] = []
    terminals: list[Terminal] = []
    ids = []
    try:
        for _ in range(SANDBOXES):
            sessions.append(stack.start_session())
            terminals.append(await Terminal.open(stack.terminal_url(sessions[-1])))
            await terminals[-1].expect("# ", timeout=30)
            with database(stack) as db:
                (instance_id,) = db.execute(
                    "SELECT id FROM sandboxes_instance WHERE session_id = ?", (sessions[-1]["id"].replace("-", ""),)
                ).fetchone()
            ids.append(instance_id.replace("-", ""))
        yield ids
    finally:
        for terminal in terminals:
            await terminal.close()
        for session in sessions:
            stack.end_session(session)


async def held_upload(client: AgentClient, sandbox_id: str, number: int) -> tuple[socket.socket, list[int]]:
    """An upload that got its turn and its pipe, and sends nothing: (connection, [pipe])."""
    request = {"op": "put_file", "sandbox": sandbox_id, "path": f"/tmp/held-{number}", "size": 10}
    sock, _reply, fds = await client._request_with_fds(request, 30)
    return sock, fds


async def waiting_download(client: AgentClient, sandbox_id: str) -> asyncio.Task[tuple[dict[str, Any], int]]:
    """A download of the sandbox's /etc/hostname that, 0.5 s after it was asked, still waits for its
    turn; AgentError if it was refused, AssertionError if it was answered."""
    task = asyncio.create_task(client.get_file(sandbox_id, "/etc/hostname", 1000))
    await asyncio.wait({task}, timeout=0.5)
    if task.done():
        reply, memfd = task.result()  # a refusal is raised here
        os.close(memfd)
        raise AssertionError(f"a download was served while every turn of the host was held: {reply}")
    return task


async def test_a_download_waiting_for_its_turn_gives_its_place_up_when_its_client_hangs_up(
    stack: Stack, sandbox_ids: list[str]
) -> None:
    client = agent(stack)
    *holders, waiter = sandbox_ids
    held = [await held_upload(client, holders[n // PER_SANDBOX], n) for n in range(PER_AGENT)]
    try:
        # The waiting sandbox's whole bound waits for a turn; then both clients give up.
        abandoned = [await waiting_download(client, waiter) for _ in range(PER_SANDBOX)]
        for task in abandoned:
            task.cancel()  # the client closes its connection, as the web tier does at its deadline
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Their places are given up: a new download of that sandbox is not refused as one too many.
        deadline = time.monotonic() + 5
        while True:
            try:
                download = await waiting_download(client, waiter)
                break
            except AgentError as refused:
                if refused.code != "busy" or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        for sock, fds in held:  # the uploads end (incomplete), and give their turns back
            for fd in fds:
                os.close(fd)
            sock.close()
    reply, memfd = await asyncio.wait_for(download, 30)
    try:
        assert os.pread(memfd, 1000, 0).strip() == b"node1"
    finally:
        os.close(memfd)
    assert reply["path"] == "/etc/hostname"
