"""The client's end of a terminal stream, on a real socket pair (the other end plays the agent) and real PTYs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from sandbox.wire import protocol
from sandbox.wire import stream as stream_module
from sandbox.wire.protocol import Kind
from sandbox.wire.replay import ReplayBuffer
from sandbox.wire.stream import TYPED_FRAME, Frame, FrameReceiver, TerminalStream
from tests.ptykit import read_available, read_exactly, window_size
from tests.waiting import eventually_async

Connect = Callable[..., Awaitable[tuple[TerminalStream, socket.socket]]]


@pytest.fixture
async def connected() -> AsyncIterator[Connect]:
    """Opens a stream (its keyword arguments go to TerminalStream) and returns it with the agent's
    end of its connection (non-blocking); after the test, closes every stream, its PTY input and
    the agent's end."""
    opened: list[tuple[TerminalStream, socket.socket]] = []

    async def connect(**stream_arguments: int | None) -> tuple[TerminalStream, socket.socket]:
        ours, agent = socket.socketpair()
        try:
            transport, receiver = await asyncio.get_running_loop().create_unix_connection(FrameReceiver, sock=ours)
        except BaseException:
            ours.close()
            agent.close()
            raise
        agent.setblocking(False)
        stream = TerminalStream(transport, receiver, **stream_arguments)
        opened.append((stream, agent))
        return stream, agent

    yield connect
    for stream, agent in opened:
        await stream.close()
        if stream.pty is not None:
            stream.pty.close()  # safe to repeat
        agent.close()


def received(agent: socket.socket) -> bytes:
    """What the stream wrote to the agent so far (its writes are immediate on an idle socket)."""
    try:
        return agent.recv(65536)
    except BlockingIOError:
        return b""


def at_eof(agent: socket.socket) -> bool:
    """Whether the stream closed its end of the connection (and sent nothing more)."""
    try:
        return agent.recv(65536) == b""
    except BlockingIOError:
        return False


def present(frame: Frame | None) -> Frame:
    """The frame, failing the test if the stream ended instead."""
    assert frame is not None, "the stream ended where a frame was expected"
    return frame


async def parked_reader(stream: TerminalStream) -> asyncio.Task[Frame | None]:
    reader = asyncio.create_task(stream.read())
    await asyncio.sleep(0)  # one turn of the loop: the task runs and parks in read() (nothing to await)
    assert not reader.done(), "read() returned with nothing sent"
    return reader


class Sink:
    """A websocket stand-in: takes output payloads, or declines them while ``accept`` is False."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.offered: list[bytes] = []
        self.taken: list[bytes] = []

    def __call__(self, payload: bytes) -> bool:
        self.offered.append(payload)
        if self.accept:
            self.taken.append(payload)
        return self.accept


def data(payload: bytes) -> bytes:
    return protocol.encode(Kind.DATA, payload)


def event(message: dict[str, object]) -> bytes:
    return protocol.encode_json(Kind.EVENT, message)


async def test_output_goes_to_the_sink_only_while_a_reader_is_parked(connected: Connect) -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    agent.send(data(b"nobody reads"))
    await eventually_async(lambda: stream.receiver.frames, "the frame is queued", timeout=1, interval=0.001)
    assert sink.offered == []
    assert await stream.read() == (Kind.DATA, b"nobody reads")
    reader = await parked_reader(stream)
    agent.send(data(b"echo"))
    await eventually_async(lambda: sink.taken, "the sink took output", timeout=1, interval=0.001)
    assert sink.taken == [b"echo"]
    assert not reader.done()
    assert not stream.receiver.frames  # taken by the sink, not queued
    agent.send(event({"type": "exit", "code": 0}))
    assert await asyncio.wait_for(reader, 1) == (Kind.EVENT, b'{"type":"exit","code":0}')


async def test_output_the_sink_declines_is_read_in_order_with_what_follows_it(connected: Connect) -> None:
    stream, agent = await connected()
    sink = Sink(accept=False)
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(data(b"first") + data(b"second"))
    assert await asyncio.wait_for(reader, 1) == (Kind.DATA, b"first")
    sink.accept = True  # too late for "second": it is queued behind "first"
    assert sink.offered == [b"first"]
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"second")
    assert sink.taken == []
    reader = await parked_reader(stream)  # nothing queued and a reader parked again: the sink takes output
    agent.send(data(b"third"))
    await eventually_async(lambda: sink.taken, "the sink took output", timeout=1, interval=0.001)
    assert sink.taken == [b"third"]
    assert not reader.done()
    reader.cancel()


async def test_output_behind_a_queued_frame_is_queued_even_if_the_sink_would_take_it(connected: Connect) -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(event({"type": "title"}) + data(b"after the event") + data(b"and more"))
    assert await asyncio.wait_for(reader, 1) == (Kind.EVENT, b'{"type":"title"}')
    assert sink.offered == []
    assert await stream.read() == (Kind.DATA, b"after the event")
    assert await stream.read() == (Kind.DATA, b"and more")


async def test_a_parked_reader_hands_consecutive_output_to_the_sink_in_order(connected: Connect) -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(data(b"a") + data(b"b") + data(b"c"))
    await eventually_async(
        lambda: sink.taken, "the sink took 3 payloads", timeout=1, interval=0.001, until=lambda taken: len(taken) == 3
    )
    assert sink.taken == [b"a", b"b", b"c"]
    assert not reader.done()
    reader.cancel()


async def test_events_are_queued_even_while_the_sink_takes_output(connected: Connect) -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(event({"type": "resize", "cols": 80, "rows": 24}))
    kind, payload = present(await asyncio.wait_for(reader, 1))
    assert kind == Kind.EVENT
    assert json.loads(payload) == {"type": "resize", "cols": 80, "rows": 24}
    assert sink.offered == []


async def test_reading_pauses_above_the_queue_limit_and_resumes_at_half(monkeypatch, connected: Connect) -> None:
    monkeypatch.setattr(stream_module, "QUEUE_LIMIT", 100)
    stream, agent = await connected()
    transport = stream.transport
    agent.send(data(b"a" * 40) + data(b"b" * 40))  # 80 bytes queued: under the limit
    await eventually_async(
        lambda: stream.receiver.frames, "2 frames queued", timeout=1, interval=0.001, until=lambda f: len(f) == 2
    )
    assert transport.is_reading()
    agent.send(data(b"c" * 40))  # 120 bytes queued
    await eventually_async(
        lambda: stream.receiver.frames, "3 frames queued", timeout=1, interval=0.001, until=lambda f: len(f) == 3
    )
    assert not transport.is_reading()
    agent.send(data(b"late"))
    for _ in range(5):  # the point: five turns of the loop, each polling the socket that has "late" ready
        await asyncio.sleep(0)
    assert len(stream.receiver.frames) == 3
    assert await stream.read() == (Kind.DATA, b"a" * 40)  # 80 left: above half the limit
    assert not transport.is_reading()
    assert await stream.read() == (Kind.DATA, b"b" * 40)  # 40 left
    assert transport.is_reading()
    assert await stream.read() == (Kind.DATA, b"c" * 40)
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"late")


@pytest.mark.parametrize(
    "garbage",
    [
        protocol.HEADER.pack(99, 0),  # an unknown kind
        protocol.HEADER.pack(Kind.DATA, protocol.MAX_PAYLOAD + 1),  # a length beyond the limit
    ],
    ids=["unknown-kind", "oversize"],
)
async def test_garbage_from_the_agent_ends_the_stream_after_the_frames_before_it(
    garbage: bytes, caplog, connected: Connect
) -> None:
    caplog.set_level(logging.ERROR)
    stream, agent = await connected()
    agent.send(data(b"before") + garbage + data(b"after"))
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"before")
    assert await asyncio.wait_for(stream.read(), 1) is None
    assert await asyncio.wait_for(stream.read(), 1) is None  # and stays ended
    await eventually_async(
        lambda: at_eof(agent), "the stream closed its end of the connection", timeout=1, interval=0.001
    )
    assert caplog.records == []  # ended as designed, not by an exception in the protocol


async def test_the_agent_closing_ends_the_stream(connected: Connect) -> None:
    stream, agent = await connected()
    agent.send(data(b"last words"))
    agent.close()
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"last words")
    assert await asyncio.wait_for(stream.read(), 1) is None


async def test_an_exit_event_closes_the_pty_input_and_other_events_do_not(
    connected: Connect, pty: tuple[int, int]
) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    assert stream.pty is not None
    agent.send(event({"type": "title", "text": "exit"}))  # mentions "exit", but is no exit
    assert present(await asyncio.wait_for(stream.read(), 1))[0] == Kind.EVENT
    assert not stream.pty.closed
    agent.send(event({"type": "exit", "code": 0}))
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.EVENT, b'{"type":"exit","code":0}')
    assert stream.pty.closed
    await stream.send(Kind.DATA, b"too late")
    assert read_available(slave) == b""
    assert received(agent) == b""  # no TYPED for input that went nowhere


async def test_the_end_of_the_stream_closes_the_pty_input(connected: Connect, pty: tuple[int, int]) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    assert stream.pty is not None
    agent.close()
    assert await asyncio.wait_for(stream.read(), 1) is None
    assert stream.pty.closed


async def test_input_goes_to_the_pty_and_a_typed_frame_to_the_agent_after_each_write(
    connected: Connect, pty: tuple[int, int]
) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    await stream.send(Kind.DATA, b"ls -l\r")
    assert received(agent) == TYPED_FRAME  # and no DATA frame: the input went to the PTY only
    assert await read_exactly(slave, 6) == b"ls -l\r"
    assert stream.send_now(Kind.DATA, b"q")
    assert received(agent) == TYPED_FRAME
    assert await read_exactly(slave, 1) == b"q"


async def test_input_the_pty_takes_only_later_is_followed_by_typed_frames_then(
    connected: Connect, pty: tuple[int, int]
) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    assert stream.pty is not None
    sent = bytes(range(256)) * 192  # 48 KiB, more than the PTY's input queue holds
    assert stream.send_now(Kind.DATA, sent)
    assert stream.pty.backlog() > 0
    assert received(agent) == TYPED_FRAME  # for the part the PTY took at once
    assert await read_exactly(slave, len(sent)) == sent
    later = received(agent)  # one TYPED per write of the rest
    assert later
    assert later == TYPED_FRAME * (len(later) // len(TYPED_FRAME))


async def test_send_now_declines_input_while_the_pty_has_a_large_backlog(
    connected: Connect, pty: tuple[int, int]
) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    assert stream.pty is not None
    sent = b"x" * (stream_module.SEND_NOW_LIMIT + 64 * 1024)
    assert stream.send_now(Kind.DATA, sent)
    assert stream.pty.backlog() >= stream_module.SEND_NOW_LIMIT
    assert not stream.send_now(Kind.DATA, b"declined")
    assert await read_exactly(slave, len(sent)) == sent
    await asyncio.sleep(0.01)  # the point: a while in which the declined input does not arrive
    assert read_available(slave) == b""  # nothing of what was declined


async def test_input_without_a_pty_goes_to_the_agent_as_data_frames(connected: Connect) -> None:
    stream, agent = await connected()
    await stream.send(Kind.DATA, b"ls\r")
    assert stream.send_now(Kind.DATA, b"q")
    assert received(agent) == data(b"ls\r") + data(b"q")


async def test_a_resize_without_a_pty_is_a_resize_frame(connected: Connect) -> None:
    stream, agent = await connected()
    await stream.resize(132, 43)
    frame = received(agent)
    kind, length = protocol.HEADER.unpack_from(frame)
    assert kind == Kind.RESIZE
    assert len(frame) == protocol.HEADER.size + length
    assert json.loads(frame[protocol.HEADER.size :]) == {"cols": 132, "rows": 43}


async def test_a_resize_with_a_pty_sets_its_window_size_and_sends_no_frame(
    connected: Connect, pty: tuple[int, int]
) -> None:
    master, slave = pty
    stream, agent = await connected(pty_fd=os.dup(master))
    await stream.resize(0, 0)
    await stream.resize(132, 43)
    assert window_size(slave) == (132, 43)
    await stream.resize(0, 0)
    assert window_size(slave) == (2, 2)
    assert received(agent) == b""


Lend = Callable[[], Awaitable[tuple[TerminalStream, socket.socket, int, ReplayBuffer]]]


@pytest.fixture
def lend(connected: Connect, pty: tuple[int, int]) -> Iterator[Lend]:
    """Opens a stream lent the reading of a real PTY (with its own replay buffer) and returns it
    with the agent's end, the PTY's slave and the replay buffer; all closed after the test."""
    replays: list[ReplayBuffer] = []

    async def lent_stream() -> tuple[TerminalStream, socket.socket, int, ReplayBuffer]:
        master, slave = pty
        replay = ReplayBuffer(4096)
        replays.append(replay)
        stream, agent = await connected(pty_fd=os.dup(master), replay_fd=os.dup(replay.fd))
        agent.send(protocol.encode_json(Kind.EVENT, {"type": "lend"}))
        await eventually_async(lambda: stream.lent, "the stream is lent the PTY", timeout=1, interval=0.001)
        return stream, agent, slave, replay

    try:
        yield lent_stream
    finally:
        for replay in replays:
            replay.close()


async def test_a_lent_stream_reads_the_pty_into_the_replay_and_gives_it_back_when_asked(lend: Lend) -> None:
    stream, agent, slave, replay = await lend()
    os.write(slave, b"read by the web tier")
    kind, payload = present(await asyncio.wait_for(stream.read(), 1))
    assert (kind, payload) == (Kind.DATA, b"read by the web tier")
    assert replay.contents() == b"read by the web tier"
    agent.send(protocol.encode_json(Kind.EVENT, {"type": "give_back"}))
    await eventually_async(lambda: not stream.lent, "the stream gave the PTY back", timeout=1, interval=0.001)
    assert received(agent) == protocol.encode(Kind.GIVEN)
    os.write(slave, b"left for the agent")
    await asyncio.sleep(0.05)  # the point: a while in which the stream, given back, does not read it
    assert stream.pty is not None
    assert os.read(stream.pty.fd, 100) == b"left for the agent"  # nobody read it


async def test_a_lent_stream_with_a_full_queue_stops_reading_the_pty_but_still_hears_give_back(
    monkeypatch, lend: Lend
) -> None:
    monkeypatch.setattr(stream_module, "QUEUE_LIMIT", 1000)
    stream, agent, slave, replay = await lend()
    os.write(slave, b"x" * 3000)  # nobody reads the stream: it queues, then stops reading the PTY
    await eventually_async(
        lambda: stream.receiver.reading_paused, "the stream stopped reading", timeout=1, interval=0.001
    )
    os.write(slave, b"y" * 10)
    await asyncio.sleep(0.05)  # the point: a while in which the stream, paused, does not read it
    queued = b"".join(f[1] for f in stream.receiver.frames if f is not None and f[0] == Kind.DATA)
    assert b"y" not in queued, "the stream read the PTY while its queue was full"
    agent.send(protocol.encode_json(Kind.EVENT, {"type": "give_back"}))  # a second viewer attaches
    await eventually_async(lambda: not stream.lent, "the stream gave the PTY back", timeout=1, interval=0.001)
    assert received(agent) == protocol.encode(Kind.GIVEN)
