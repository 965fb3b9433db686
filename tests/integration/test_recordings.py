"""Recordings of a workshop learner's terminal on a real stack (docs/workshops.md, Recordings): what
the learner types is in the .cast the page offers, Debian's asciinema plays it, a marker sent
through the web tier lands in it, and `yes | head -c 50m` leaves it within its bound."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.wire import asciicast
from sandbox.wire.client import AgentClient
from tests.casts import asciinema_cat
from tests.integration.test_agent_restart import restart
from tests.stack import Stack, Terminal
from tests.waiting import eventually, eventually_async
from tests.workshopkit import CookieClient, make_workshop

pytestmark = pytest.mark.root

BOUND = 2 * 1024 * 1024  # PLAYGROUND_RECORDING_MAX_BYTES's default


@pytest.fixture(scope="module")
def recording_stack() -> Iterator[Stack]:
    with Stack.running() as running:
        yield running


def join(stack: Stack, browser: CookieClient, name: str) -> str:
    """Join a new workshop of busybox sandboxes as ``name``; the session's id."""
    mark = uuid.uuid4().hex[:8]
    _, code = make_workshop(stack, f"teacher-{mark}", "a long password", "Recorded class", 5, image="busybox")
    return browser.join(code, name)


async def flood(terminal: Terminal, command: str, needle: bytes, timeout: float) -> None:
    """Type ``command`` and read its output until ``needle``, keeping only a tail of it."""
    await terminal.type(command)
    tail = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in tail:
        left = deadline - loop.time()
        assert left > 0, f"{needle!r} not seen within {timeout}s; last output {tail[-200:]!r}"
        message = await asyncio.wait_for(terminal.ws.recv(), left)
        if isinstance(message, bytes):
            tail = (tail + message[1:])[-4096:]


def fetch_cast(browser: CookieClient, session_id: str, tmp_path: Path) -> Path:
    """The learner's first terminal's recording as the page's link downloads it."""
    status, headers, body = browser.send("GET", f"/s/{session_id}/recordings/node1-0.cast")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="node1-0.cast"', status
    path = tmp_path / "node1-0.cast"
    path.write_bytes(body)
    return path


def events(path: Path) -> list[list[object]]:
    head, *lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(head)["version"] == 2
    return [json.loads(line) for line in lines]


async def open_terminal(stack: Stack, browser: CookieClient, session_id: str) -> Terminal:
    """The learner's first terminal, as their page opens it (their cookie)."""
    status, _, body = browser.send("GET", f"/api/sessions/{session_id}/")
    assert status == 200, body
    url = f"ws://127.0.0.1:{stack.port}{json.loads(body)['instances'][0]['terminal']}"
    return await Terminal.open(url, additional_headers={"Cookie": browser.cookie_header()})


async def test_a_recording_goes_on_in_the_same_file_across_an_agent_restart(
    recording_stack: Stack, tmp_path: Path
) -> None:
    stack, browser = recording_stack, CookieClient(recording_stack.port)
    session_id = join(stack, browser, "Jun")
    terminal = await open_terminal(stack, browser, session_id)
    try:
        assert await terminal.run("echo before-$((1+1))", timeout=30) == "before-2\n"
    finally:
        await terminal.close()
    restart(stack, "agent", signal.SIGUSR1)  # in place: the sandboxes are left to the next agent
    terminal = await open_terminal(stack, browser, session_id)
    try:
        assert await terminal.run("echo after-$((2+2))", timeout=30) == "after-4\n"
    finally:
        await terminal.close()
    cast = eventually(
        lambda: fetch_cast(browser, session_id, tmp_path),
        "the output after the restart in the recording",
        10,
        0.3,
        until=lambda path: "after-4" in path.read_text(encoding="utf-8"),
        explain=lambda: (tmp_path / "node1-0.cast").read_text()[-600:],
    )
    played = asciinema_cat(cast)
    assert "before-2\r\n" in played and "after-4\r\n" in played
    assert cast.read_text(encoding="utf-8").count('"version": 2') == 1  # one recording, continued


async def test_a_learners_terminal_is_recorded_replayed_by_asciinema_and_kept_within_its_bound(
    recording_stack: Stack, tmp_path: Path
) -> None:
    stack, browser = recording_stack, CookieClient(recording_stack.port)
    session_id = join(stack, browser, "Min")
    status, _, body = browser.send("GET", f"/api/sessions/{session_id}/")
    assert status == 200, body
    url = f"ws://127.0.0.1:{stack.port}{json.loads(body)['instances'][0]['terminal']}"
    terminal = await Terminal.open(url, additional_headers={"Cookie": browser.cookie_header()})
    try:
        assert await terminal.run("echo recorded-$((6*7))", timeout=30) == "recorded-42\n"
        marked = stack.manage(
            "shell",
            "-c",
            f"import uuid; from playground.workshops import recordings as r; "
            f"print(r.mark(uuid.UUID('{session_id}'), 'step 2'))",
        )
        assert marked.split()[-1] == "1"
        page = browser.send("GET", f"/s/{session_id}/recordings/")
        assert page[0] == 200 and f'data-cast="/s/{session_id}/recordings/node1-0.cast"' in page[2].decode()

        def recorded() -> Path:
            return fetch_cast(browser, session_id, tmp_path)

        first = eventually(
            recorded,
            "the echo and the marker in the recording",
            10,
            0.3,
            until=lambda p: ["m", "step 2"] in [e[1:] for e in events(p)],
        )
        assert "recorded-42\r\n" in asciinema_cat(first)

        await flood(terminal, "yes | head -c 50m; echo flood-$((1+1))\n", b"flood-2\r\n", 60)
        on_disk = asciicast.recordings_dir(stack.data_dir) / session_id.replace("-", "") / "node1-0.cast"
        eventually(lambda: b"flood-2" in on_disk.read_bytes()[-4096:], "the flood's end written", 10, 0.3)
        flooded = fetch_cast(browser, session_id, tmp_path)
        assert flooded.stat().st_size <= BOUND
        kept = events(flooded)
        assert kept[0][1:] == ["m", asciicast.DROPPED]
        assert "recorded-42" not in flooded.read_text(encoding="utf-8")  # the oldest output went first
        played = asciinema_cat(flooded)
        assert "y\r\ny\r\nflood-2\r\n" in played
    finally:
        await terminal.close()
    key = next(value for name, value in browser.cookies.items() if name.endswith(session_id.replace("-", "")))
    ended = stack.request("DELETE", f"/api/sessions/{session_id}/", headers={"Authorization": f"Session {key}"})
    assert ended.status == 204, ended.body
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    group = session_id.replace("-", "")

    async def learners_sandboxes() -> list[object]:
        return [s for s in (await agent.request("list"))["sandboxes"] if s["group"] == group]

    await eventually_async(
        learners_sandboxes, "the learner's sandbox destroyed", 30, 0.3, until=lambda found: not found
    )
    assert 0 < on_disk.stat().st_size <= BOUND  # destroying the sandbox keeps its recording
