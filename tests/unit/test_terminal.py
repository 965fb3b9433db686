"""The agent's terminal object on a real PTY pair."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Callable

import pytest

from sandbox.pty import terminal as terminal_module
from sandbox.pty.terminal import Terminal
from sandbox.wire import batch as batch_module
from sandbox.wire.replay import ReplayBuffer
from tests.waiting import eventually_async

OpenTerminal = Callable[..., tuple[Terminal, int]]


@pytest.fixture
async def open_terminal() -> AsyncIterator[OpenTerminal]:
    """Opens a Terminal on a new PTY (its slave raw if ``raw``) and returns it with the slave; after
    the test every terminal is closed (safe to repeat) with its master and replay, and every slave."""
    opened: list[tuple[Terminal, int]] = []

    def open_one(raw: bool = False) -> tuple[Terminal, int]:
        master, slave = os.openpty()
        try:
            if raw:
                tty.setraw(slave)
            terminal = Terminal(master, ReplayBuffer(4096))
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        opened.append((terminal, slave))
        return terminal, slave

    yield open_one
    for terminal, slave in opened:
        terminal.close()
        os.close(slave)


async def test_closing_a_terminal_twice_never_closes_someone_elses_fd(open_terminal: OpenTerminal) -> None:
    terminal, _ = open_terminal()
    master = terminal.fd
    terminal.close()
    reused = os.open("/dev/null", os.O_RDONLY)  # the kernel hands out the lowest free number again
    try:
        assert reused == master
        terminal.close()
        os.fstat(reused)  # still open
    finally:
        os.close(reused)


async def test_a_closed_terminal_ignores_resizes_and_input(open_terminal: OpenTerminal) -> None:
    terminal, _ = open_terminal()
    terminal.close()
    assert terminal.resize(80, 24) == (80, 24)
    await terminal.write(b"ignored")


class Recorder:
    """A viewer that keeps every frame it is sent."""

    paused = False

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_output(self, data: bytes) -> None:
        self.frames.append(data)

    def send_event(self, event: dict[str, object]) -> None:
        pass

    def backlog(self) -> int:
        return 0

    async def drain(self) -> None:
        pass


async def test_the_echo_of_input_goes_out_at_once_even_right_after_other_output(
    monkeypatch, open_terminal: OpenTerminal
) -> None:
    monkeypatch.setattr(batch_module, "BATCH_DELAY", 0.5)  # so that any batching would show
    terminal, slave = open_terminal(raw=True)
    viewer = Recorder()
    terminal.attach(viewer)
    os.write(slave, b"a")  # output after quiet: sent at once
    await eventually_async(lambda: viewer.frames, "the output went out", timeout=1, interval=0.001)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await terminal.write(b"x")  # a keystroke, echoed well within BATCH_DELAY of that output
    os.write(slave, os.read(slave, 1))
    await eventually_async(
        lambda: viewer.frames, "the echo went out", timeout=1, interval=0.001, until=lambda frames: len(frames) >= 2
    )
    assert viewer.frames == [b"a", b"x"]
    assert loop.time() - started < 0.25, "the echo waited for a batch"


async def test_a_flood_is_sent_in_few_large_frames_and_nothing_is_lost(open_terminal: OpenTerminal) -> None:
    terminal, slave = open_terminal(raw=True)
    viewer = Recorder()
    terminal.attach(viewer)
    sent = b"".join(bytes([65 + i % 26]) * 1000 for i in range(200))
    writer = asyncio.get_running_loop().run_in_executor(None, os.write, slave, sent)
    await eventually_async(
        lambda: sum(map(len, viewer.frames)), f"all {len(sent)} bytes went out", until=lambda size: size >= len(sent)
    )
    await writer
    assert b"".join(viewer.frames) == sent
    assert len(viewer.frames) < len(sent) / 4096  # fewer frames than the kernel's 4 KiB reads


class Borrower(Recorder):
    """A viewer that can be lent the reading, and gives it back when asked (unless ``silent``)."""

    def __init__(self, terminal: Terminal, silent: bool = False) -> None:
        super().__init__()
        self.terminal = terminal
        self.silent = silent
        self.events: list[str] = []
        self.hung_up = False

    def send_event(self, event: dict[str, object]) -> None:
        self.events.append(str(event["type"]))
        if event["type"] == "give_back" and not self.silent:
            asyncio.get_running_loop().call_soon(self.terminal.given, self)

    def hang_up(self) -> None:
        self.hung_up = True


async def test_the_only_viewer_is_lent_the_reading_again_once_the_other_leaves(open_terminal: OpenTerminal) -> None:
    terminal, _ = open_terminal()
    old, new = Borrower(terminal), Borrower(terminal)
    terminal.attach(old, can_borrow=True)
    assert terminal.lent_to is old
    assert old.events == ["lend"]
    await terminal.take_back()  # a reload: the new page attaches before the old one has left
    terminal.attach(new, can_borrow=True)
    assert terminal.lent_to is None
    assert old.events == ["lend", "give_back"]
    assert new.events == []
    terminal.detach(old)
    assert terminal.lent_to is new
    assert new.events == ["lend"]


async def test_a_viewer_that_cannot_borrow_is_never_lent_the_reading(open_terminal: OpenTerminal) -> None:
    terminal, _ = open_terminal()
    plain, borrower = Borrower(terminal), Borrower(terminal)
    terminal.attach(plain)
    assert terminal.lent_to is None
    terminal.attach(borrower, can_borrow=True)
    terminal.detach(borrower)
    assert terminal.lent_to is None
    assert plain.events == []


async def test_two_viewers_attaching_at_once_both_attach_while_the_agent_reads(open_terminal: OpenTerminal) -> None:
    terminal, _ = open_terminal()
    first = Borrower(terminal, silent=True)
    terminal.attach(first, can_borrow=True)
    second, third = Borrower(terminal), Borrower(terminal)

    async def attach(viewer: Borrower) -> None:
        await terminal.take_back()
        terminal.attach(viewer, can_borrow=True)

    attaching = [asyncio.create_task(attach(second)), asyncio.create_task(attach(third))]
    await asyncio.sleep(0.01)  # both tasks run and wait in take_back(), which the silent first viewer never answers
    terminal.detach(first)  # it leaves while both wait: the one that attaches first is alone, and lent it
    await asyncio.gather(*attaching)
    assert terminal.viewers == [second, third]
    assert terminal.lent_to is None  # lent to the first of them, then taken back for the other
    assert second.events == ["lend", "give_back"]
    assert third.events == []


async def test_a_lent_viewer_that_never_answers_is_hung_up_on_and_detached(
    monkeypatch, open_terminal: OpenTerminal
) -> None:
    monkeypatch.setattr(terminal_module, "GIVE_BACK_TIMEOUT", 0.05)
    terminal, _ = open_terminal()
    stuck = Borrower(terminal, silent=True)
    terminal.attach(stuck, can_borrow=True)
    await terminal.take_back()
    assert stuck.hung_up
    assert terminal.viewers == []
    assert terminal.lent_to is None
