"""The agent's terminal object on a real PTY pair."""

from __future__ import annotations

import asyncio
import os
import tty

from sandbox import batch as batch_module
from sandbox.replay import ReplayBuffer
from sandbox.terminal import Terminal


async def test_closing_a_terminal_twice_never_closes_someone_elses_fd() -> None:
    master, slave = os.openpty()
    terminal = Terminal(master, ReplayBuffer(4096))
    terminal.close()
    reused = os.open("/dev/null", os.O_RDONLY)  # the kernel hands out the lowest free number again
    try:
        assert reused == master
        terminal.close()
        os.fstat(reused)  # still open
    finally:
        os.close(reused)
        os.close(slave)


async def test_a_closed_terminal_ignores_resizes_and_input() -> None:
    master, slave = os.openpty()
    terminal = Terminal(master, ReplayBuffer(4096))
    terminal.close()
    assert terminal.resize(80, 24) == (80, 24)
    await terminal.write(b"ignored")
    os.close(slave)


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


async def test_the_echo_of_input_goes_out_at_once_even_right_after_other_output(monkeypatch) -> None:
    monkeypatch.setattr(batch_module, "BATCH_DELAY", 0.5)  # so that any batching would show
    master, slave = os.openpty()
    tty.setraw(slave)
    terminal, viewer = Terminal(master, ReplayBuffer(4096)), Recorder()
    terminal.attach(viewer)
    os.write(slave, b"a")  # output after quiet: sent at once
    while not viewer.frames:
        await asyncio.sleep(0.001)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await terminal.write(b"x")  # a keystroke, echoed well within BATCH_DELAY of that output
    os.write(slave, os.read(slave, 1))
    while len(viewer.frames) < 2 and loop.time() - started < 1:
        await asyncio.sleep(0.001)
    assert viewer.frames == [b"a", b"x"]
    assert loop.time() - started < 0.25
    terminal.close()
    os.close(slave)


async def test_a_flood_is_sent_in_few_large_frames_and_nothing_is_lost() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    terminal, viewer = Terminal(master, ReplayBuffer(4096)), Recorder()
    terminal.attach(viewer)
    sent = b"".join(bytes([65 + i % 26]) * 1000 for i in range(200))
    writer = asyncio.get_running_loop().run_in_executor(None, os.write, slave, sent)
    while sum(map(len, viewer.frames)) < len(sent):
        await asyncio.sleep(0.01)
    await writer
    assert b"".join(viewer.frames) == sent
    assert len(viewer.frames) < len(sent) / 4096  # fewer frames than the kernel's 4 KiB reads
    terminal.close()
    os.close(slave)
