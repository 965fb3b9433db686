"""The agent's terminal object on a real PTY pair."""

from __future__ import annotations

import os

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
