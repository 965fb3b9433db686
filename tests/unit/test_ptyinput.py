"""Input written straight to a PTY master, on real PTY pairs (the slave raw, so bytes arrive unchanged)."""

from __future__ import annotations

import asyncio
import os
import random
import select
from collections.abc import AsyncIterator, Callable

import pytest

from sandbox.wire import ptyinput
from sandbox.wire.ptyinput import PtyInput
from tests.ptykit import read_available, read_exactly, window_size
from tests.waiting import eventually, eventually_async

OpenInput = Callable[..., PtyInput]


def filled(pty_input: PtyInput, data: bytes) -> None:
    """Write ``data`` without reading the slave; it must be more than the PTY's input queue holds."""
    pty_input.write(data)
    assert pty_input.pending, "the PTY took everything: write more to fill it"


def await_room(master: int) -> None:
    """Wait until the PTY takes input again, without running the event loop (which would flush).

    Polled: the kernel frees room asynchronously after the slave reads, and a writer already waiting in select
    was seen to sleep through that until its timeout.
    """
    eventually(lambda: select.select([], [master], [], 0)[1], "the PTY has room again", timeout=1, interval=0.0002)


def some_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
async def open_input(pty: tuple[int, int]) -> AsyncIterator[OpenInput]:
    """Opens a PtyInput on a duplicate of the PTY's master (as the agent hands one over), reporting
    writes to the given Counter; every input is closed after the test (closing is safe to repeat)."""
    master, _ = pty
    opened: list[PtyInput] = []

    def open_one(written: Callable[[], None] | None = None) -> PtyInput:
        pty_input = PtyInput(os.dup(master), written or Counter())
        opened.append(pty_input)
        return pty_input

    yield open_one
    for pty_input in opened:
        pty_input.close()


async def test_input_reaches_the_pty_unchanged_and_each_write_is_reported(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    written = Counter()
    pty_input = open_input(written)
    pty_input.write(bytes(range(256)))
    assert written.calls == 1
    pty_input.write(b"ls\r")
    assert written.calls == 2
    pty_input.write(b"")  # nothing to write: nothing reported
    assert written.calls == 2
    assert await read_exactly(slave, 259) == bytes(range(256)) + b"ls\r"
    assert pty_input.backlog() == 0


async def test_input_the_pty_cannot_take_yet_arrives_later_in_order(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    written = Counter()
    pty_input = open_input(written)
    chunks = [some_bytes(48 * 1024, 1), some_bytes(5000, 2), b"x", some_bytes(20000, 3)]
    filled(pty_input, chunks[0])
    for chunk in chunks[1:]:
        pty_input.write(chunk)
    assert pty_input.backlog() > len(b"".join(chunks[1:]))  # part of the first chunk waits too
    calls_before_reading = written.calls
    sent = b"".join(chunks)
    assert await read_exactly(slave, len(sent)) == sent
    assert pty_input.backlog() == 0
    assert written.calls > calls_before_reading  # the writes of pending input were reported as well


async def test_input_written_while_older_input_waits_goes_behind_it_even_when_the_pty_has_room(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    pty_input = open_input()
    older = some_bytes(32 * 1024, 4)
    filled(pty_input, older)
    readable, _, _ = select.select([slave], [], [], 1.0)  # the kernel hands input to the slave asynchronously
    assert readable, "nothing reached the slave"
    taken = os.read(slave, 65536)  # the PTY has room again, but the loop has not flushed yet
    await_room(master)
    pty_input.write(b"newer")  # must not jump ahead of what still waits
    rest = await read_exactly(slave, len(older) + 5 - len(taken))
    assert taken + rest == older + b"newer"


async def test_drain_waits_while_more_than_high_water_is_pending_and_returns_once_the_pty_reads(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    pty_input = open_input()
    await asyncio.wait_for(pty_input.drain(), 0.5)  # nothing pending: no wait
    sent = some_bytes(ptyinput.HIGH_WATER + 40 * 1024, 5)
    filled(pty_input, sent)
    assert pty_input.backlog() > ptyinput.HIGH_WATER
    drained = asyncio.create_task(pty_input.drain())
    for _ in range(5):  # the point: five turns of the loop in which drain() keeps waiting
        await asyncio.sleep(0)
    assert not drained.done(), "drain() returned with more than high water pending"
    received = bytearray()

    def slave_read_and_drained() -> bool:
        received.extend(read_available(slave))
        return drained.done()

    await eventually_async(
        slave_read_and_drained,
        "drain() returns once the slave reads",
        timeout=1,
        interval=0.001,
        explain=lambda: f"{pty_input.backlog()} bytes pending",
    )
    assert pty_input.backlog() <= ptyinput.HIGH_WATER
    assert pty_input.backlog() > 0  # released at the mark, not only once everything was written
    received += await read_exactly(slave, len(sent) - len(received))
    assert received == sent


async def test_closing_drops_pending_input_releases_drain_and_stops_watching_the_fd(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    pty_input = open_input()
    filled(pty_input, some_bytes(ptyinput.HIGH_WATER + 40 * 1024, 6))
    drained = asyncio.create_task(pty_input.drain())
    await asyncio.sleep(0)  # one turn of the loop: the task runs and waits in drain() (nothing to await)
    assert not drained.done(), "drain() returned with more than high water pending"
    pty_input.close()
    assert pty_input.closed
    assert pty_input.backlog() == 0
    await asyncio.wait_for(drained, 0.5)
    with pytest.raises(OSError):
        os.fstat(pty_input.fd)
    assert not asyncio.get_running_loop().remove_writer(pty_input.fd)  # no flush left registered for the fd


async def test_closing_twice_never_closes_someone_elses_fd(pty: tuple[int, int], open_input: OpenInput) -> None:
    master, slave = pty
    pty_input = open_input()
    pty_input.close()
    reused = os.open("/dev/null", os.O_RDONLY)  # the kernel hands out the lowest free number again
    try:
        assert reused == pty_input.fd
        pty_input.close()
        os.fstat(reused)  # still open
    finally:
        os.close(reused)


async def test_a_closed_input_ignores_writes_and_resizes_even_once_its_fd_number_is_reused(
    pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    written = Counter()
    pty_input = open_input(written)  # a duplicate, as the agent hands over: the PTY outlives it
    pty_input.resize(90, 30)
    pty_input.close()
    reused = os.dup(master)  # the lowest free number: the one the input had, now the agent's PTY again
    try:
        assert reused == pty_input.fd
        pty_input.write(b"stray")
        pty_input.resize(120, 40)
        assert written.calls == 0
        assert pty_input.backlog() == 0
        assert window_size(slave) == (90, 30)
        assert select.select([slave], [], [], 0.05)[0] == []  # no input reached the PTY (the 50 ms wait is the point)
    finally:
        os.close(reused)


async def test_resize_sets_the_window_size_the_slave_sees(pty: tuple[int, int], open_input: OpenInput) -> None:
    master, slave = pty
    pty_input = open_input()
    pty_input.resize(132, 43)
    assert window_size(slave) == (132, 43)


@pytest.mark.parametrize("asked,expected", [((0, 0), (2, 2)), ((100000, 100000), (1000, 500)), ((-5, 24), (2, 24))])
async def test_resize_clamps_sizes_as_the_agent_would(
    asked: tuple[int, int], expected: tuple[int, int], pty: tuple[int, int], open_input: OpenInput
) -> None:
    master, slave = pty
    pty_input = open_input()
    pty_input.resize(*asked)
    assert window_size(slave) == expected


async def test_a_write_error_other_than_a_full_pty_closes_the_input() -> None:
    readable, writable = os.pipe()
    written = Counter()
    pty_input = PtyInput(readable, written)  # writing the read end of a pipe fails with EBADF
    try:
        pty_input.write(b"x")
        assert pty_input.closed
        assert pty_input.backlog() == 0
        assert written.calls == 0
        with pytest.raises(OSError):
            os.fstat(readable)
        pty_input.write(b"y")  # closed: ignored, no second close
    finally:
        pty_input.close()  # safe to repeat: closes the read end only if the write error did not
        os.close(writable)
