"""The terminal websocket against a real stack and real sandboxes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.stack import Stack, Terminal


async def open_terminal(stack: Stack, session: dict) -> Terminal:
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return terminal


async def test_a_scripted_client_runs_a_command_and_reads_its_output(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    assert (await terminal.run("echo $((6*7))")).strip() == "42"
    await terminal.close()
    stack.end_session(session)


async def test_resize_reaches_the_shell(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    await terminal.resize(132, 43)
    assert (await terminal.run("stty size")).strip() == "43 132"
    await terminal.close()
    stack.end_session(session)


@pytest.mark.parametrize("cols,rows,expected", [(0, 0, "2 2"), (100000, 100000, "500 1000"), (-5, 3, "3 2")])
async def test_absurd_sizes_are_clamped(stack: Stack, cols: int, rows: int, expected: str) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    await terminal.resize(cols, rows)
    assert (await terminal.run("stty size")).strip() == expected
    await terminal.close()
    stack.end_session(session)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x07hello",
        "a text frame",
        b"\x01not json",
        b'\x01{"cols": "x"}',
        b'\x01{"rows": 3}',
        b"\x01[]",
        b'\x01{"cols": 1e400, "rows": 1}',
    ],
)
async def test_malformed_frames_get_an_error_event_and_the_connection_stays_up(stack: Stack, frame) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    await terminal.ws.send(frame)
    event = await terminal.expect_event("error")
    assert event["message"]
    assert (await terminal.run("echo still-here")).strip() == "still-here"
    await terminal.close()
    stack.end_session(session)


async def test_a_wrong_key_is_closed_with_4403(stack: Stack) -> None:
    session = stack.start_session()
    other = stack.start_session()
    for url in (
        stack.terminal_url(session, key="nope"),
        stack.terminal_url(session, key=other["key"]),
        stack.terminal_url(session).split("?")[0],
    ):
        terminal = await Terminal.open(url)
        assert await terminal.closed() == 4403
        assert not terminal.output, "no terminal output may reach a client without the key"
    stack.end_session(session)
    stack.end_session(other)


async def test_a_browser_page_from_another_site_is_refused(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session), origin="http://evil.example")
    assert await terminal.closed() == 4403
    stack.end_session(session)


@pytest.mark.parametrize("path", [f"/ws/sessions/{uuid.uuid4().hex}/node1/", "/ws/sessions/zzz/node1/"])
async def test_an_unknown_session_is_closed_with_4404(stack: Stack, path: str) -> None:
    terminal = await Terminal.open(f"ws://127.0.0.1:{stack.port}{path}?key=x")
    assert await terminal.closed() == 4404


async def test_an_unknown_instance_is_closed_with_4404(stack: Stack) -> None:
    session = stack.start_session()
    url = stack.terminal_url(session).replace("/node1/", "/node9/")
    terminal = await Terminal.open(url)
    assert await terminal.closed() == 4404
    stack.end_session(session)


async def test_ending_the_session_tells_the_viewer_why_and_closes_with_4410(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    stack.end_session(session)
    event = await terminal.expect_event("exit")
    assert event["reason"] == "deleted"
    assert event["message"]
    assert await terminal.closed() == 4410
    again = await Terminal.open(stack.terminal_url(session))
    assert await again.closed() == 4410


async def test_the_expiry_is_announced_on_connect(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    event = await terminal.expect_event("expiry")
    assert event["expires_at"] == session["expires_at"]
    assert 0 < event["seconds_left"] <= 14400
    await terminal.close()
    stack.end_session(session)


async def test_input_typed_before_the_sandbox_is_ready_is_kept(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.type("echo early-$((40+2))\n")
    await terminal.expect("early-42", timeout=20)
    await terminal.close()
    stack.end_session(session)


async def test_two_viewers_see_the_same_shell(stack: Stack) -> None:
    session = stack.start_session()
    first = await open_terminal(stack, session)
    second = await Terminal.open(stack.terminal_url(session))
    await first.type("echo shared-$((2*21))\n")
    await second.expect("shared-42")
    await asyncio.gather(first.close(), second.close())
    stack.end_session(session)


async def test_a_reconnecting_viewer_gets_the_recent_screen_back(stack: Stack) -> None:
    session = stack.start_session()
    first = await open_terminal(stack, session)
    await first.run("echo before-$((1+1))")
    await first.close()
    second = await Terminal.open(stack.terminal_url(session))
    await second.expect("before-2")
    await second.close()
    stack.end_session(session)


async def test_exiting_the_shell_sends_an_exit_event(stack: Stack) -> None:
    session = stack.start_session()
    terminal = await open_terminal(stack, session)
    await terminal.type("exit\n")
    event = await terminal.expect_event("exit")
    assert event["reason"] == "shell_exited"
    await terminal.close()
    stack.end_session(session)
