"""The client's end of a terminal stream, on a real socket pair (the other end plays the agent) and real PTYs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable

import pytest

from sandbox.wire import protocol
from sandbox.wire import stream as stream_module
from sandbox.wire.protocol import Kind
from sandbox.wire.replay import ReplayBuffer
from sandbox.wire.stream import TYPED_FRAME, Frame, FrameReceiver, TerminalStream
from tests.ptykit import raw_pty, read_available, read_exactly, window_size


async def connected(pty_fd: int | None = None) -> tuple[TerminalStream, socket.socket]:
    """A stream and the agent's end of its connection (non-blocking)."""
    ours, agent = socket.socketpair()
    transport, receiver = await asyncio.get_running_loop().create_unix_connection(FrameReceiver, sock=ours)
    agent.setblocking(False)
    return TerminalStream(transport, receiver, pty_fd), agent


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


async def until(condition: Callable[[], object], timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.001)


def present(frame: Frame | None) -> Frame:
    """The frame, failing the test if the stream ended instead."""
    assert frame is not None, "the stream ended where a frame was expected"
    return frame


async def parked_reader(stream: TerminalStream) -> asyncio.Task[Frame | None]:
    reader = asyncio.create_task(stream.read())
    await asyncio.sleep(0)  # the task runs first and parks in read()
    assert not reader.done()
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


async def test_output_goes_to_the_sink_only_while_a_reader_is_parked() -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    agent.send(data(b"nobody reads"))
    await until(lambda: stream.receiver.frames)
    assert sink.offered == []
    assert await stream.read() == (Kind.DATA, b"nobody reads")
    reader = await parked_reader(stream)
    agent.send(data(b"echo"))
    await until(lambda: sink.taken)
    assert sink.taken == [b"echo"]
    assert not reader.done() and not stream.receiver.frames  # taken by the sink, not queued
    agent.send(event({"type": "exit", "code": 0}))
    assert await asyncio.wait_for(reader, 1) == (Kind.EVENT, b'{"type":"exit","code":0}')
    await stream.close()
    agent.close()


async def test_output_the_sink_declines_is_read_in_order_with_what_follows_it() -> None:
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
    await until(lambda: sink.taken)
    assert sink.taken == [b"third"] and not reader.done()
    reader.cancel()
    await stream.close()
    agent.close()


async def test_output_behind_a_queued_frame_is_queued_even_if_the_sink_would_take_it() -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(event({"type": "title"}) + data(b"after the event") + data(b"and more"))
    assert await asyncio.wait_for(reader, 1) == (Kind.EVENT, b'{"type":"title"}')
    assert sink.offered == []
    assert await stream.read() == (Kind.DATA, b"after the event")
    assert await stream.read() == (Kind.DATA, b"and more")
    await stream.close()
    agent.close()


async def test_a_parked_reader_hands_consecutive_output_to_the_sink_in_order() -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(data(b"a") + data(b"b") + data(b"c"))
    await until(lambda: len(sink.taken) == 3)
    assert sink.taken == [b"a", b"b", b"c"]
    assert not reader.done()
    reader.cancel()
    await stream.close()
    agent.close()


async def test_events_are_queued_even_while_the_sink_takes_output() -> None:
    stream, agent = await connected()
    sink = Sink()
    stream.on_output(sink)
    reader = await parked_reader(stream)
    agent.send(event({"type": "resize", "cols": 80, "rows": 24}))
    kind, payload = present(await asyncio.wait_for(reader, 1))
    assert kind == Kind.EVENT and json.loads(payload) == {"type": "resize", "cols": 80, "rows": 24}
    assert sink.offered == []
    await stream.close()
    agent.close()


async def test_reading_pauses_above_the_queue_limit_and_resumes_at_half(monkeypatch) -> None:
    monkeypatch.setattr(stream_module, "QUEUE_LIMIT", 100)
    stream, agent = await connected()
    transport = stream.transport
    agent.send(data(b"a" * 40) + data(b"b" * 40))  # 80 bytes queued: under the limit
    await until(lambda: len(stream.receiver.frames) == 2)
    assert transport.is_reading()
    agent.send(data(b"c" * 40))  # 120 bytes queued
    await until(lambda: len(stream.receiver.frames) == 3)
    assert not transport.is_reading()
    agent.send(data(b"late"))
    for _ in range(5):  # each turn of the loop polls the socket, which has "late" ready
        await asyncio.sleep(0)
    assert len(stream.receiver.frames) == 3
    assert await stream.read() == (Kind.DATA, b"a" * 40)  # 80 left: above half the limit
    assert not transport.is_reading()
    assert await stream.read() == (Kind.DATA, b"b" * 40)  # 40 left
    assert transport.is_reading()
    assert await stream.read() == (Kind.DATA, b"c" * 40)
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"late")
    await stream.close()
    agent.close()


@pytest.mark.parametrize(
    "garbage",
    [
        protocol.HEADER.pack(99, 0),  # an unknown kind
        protocol.HEADER.pack(Kind.DATA, protocol.MAX_PAYLOAD + 1),  # a length beyond the limit
    ],
    ids=["unknown-kind", "oversize"],
)
async def test_garbage_from_the_agent_ends_the_stream_after_the_frames_before_it(garbage: bytes, caplog) -> None:
    caplog.set_level(logging.ERROR)
    stream, agent = await connected()
    agent.send(data(b"before") + garbage + data(b"after"))
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"before")
    assert await asyncio.wait_for(stream.read(), 1) is None
    assert await asyncio.wait_for(stream.read(), 1) is None  # and stays ended
    await until(lambda: at_eof(agent))  # the stream closed its end of the connection
    assert caplog.records == []  # ended as designed, not by an exception in the protocol
    await stream.close()
    agent.close()


async def test_the_agent_closing_ends_the_stream() -> None:
    stream, agent = await connected()
    agent.send(data(b"last words"))
    agent.close()
    assert await asyncio.wait_for(stream.read(), 1) == (Kind.DATA, b"last words")
    assert await asyncio.wait_for(stream.read(), 1) is None
    await stream.close()


async def test_an_exit_event_closes_the_pty_input_and_other_events_do_not() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
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
    await stream.close()
    agent.close()
    os.close(master)
    os.close(slave)


async def test_the_end_of_the_stream_closes_the_pty_input() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
    assert stream.pty is not None
    agent.close()
    assert await asyncio.wait_for(stream.read(), 1) is None
    assert stream.pty.closed
    await stream.close()
    os.close(master)
    os.close(slave)


async def test_input_goes_to_the_pty_and_a_typed_frame_to_the_agent_after_each_write() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
    await stream.send(Kind.DATA, b"ls -l\r")
    assert received(agent) == TYPED_FRAME  # and no DATA frame: the input went to the PTY only
    assert await read_exactly(slave, 6) == b"ls -l\r"
    assert stream.send_now(Kind.DATA, b"q")
    assert received(agent) == TYPED_FRAME
    assert await read_exactly(slave, 1) == b"q"
    await stream.close()
    agent.close()
    os.close(master)
    os.close(slave)


async def test_input_the_pty_takes_only_later_is_followed_by_typed_frames_then() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
    assert stream.pty is not None
    sent = bytes(range(256)) * 192  # 48 KiB, more than the PTY's input queue holds
    assert stream.send_now(Kind.DATA, sent)
    assert stream.pty.backlog() > 0
    assert received(agent) == TYPED_FRAME  # for the part the PTY took at once
    assert await read_exactly(slave, len(sent)) == sent
    later = received(agent)  # one TYPED per write of the rest
    assert later and later == TYPED_FRAME * (len(later) // len(TYPED_FRAME))
    await stream.close()
    agent.close()
    os.close(master)
    os.close(slave)


async def test_send_now_declines_input_while_the_pty_has_a_large_backlog() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
    assert stream.pty is not None
    sent = b"x" * (stream_module.SEND_NOW_LIMIT + 64 * 1024)
    assert stream.send_now(Kind.DATA, sent)
    assert stream.pty.backlog() >= stream_module.SEND_NOW_LIMIT
    assert not stream.send_now(Kind.DATA, b"declined")
    assert await read_exactly(slave, len(sent)) == sent
    await asyncio.sleep(0.01)
    assert read_available(slave) == b""  # nothing of what was declined
    await stream.close()
    agent.close()
    os.close(master)
    os.close(slave)


async def test_input_without_a_pty_goes_to_the_agent_as_data_frames() -> None:
    stream, agent = await connected()
    await stream.send(Kind.DATA, b"ls\r")
    assert stream.send_now(Kind.DATA, b"q")
    assert received(agent) == data(b"ls\r") + data(b"q")
    await stream.close()
    agent.close()


async def test_a_resize_without_a_pty_is_a_resize_frame() -> None:
    stream, agent = await connected()
    await stream.resize(132, 43)
    frame = received(agent)
    kind, length = protocol.HEADER.unpack_from(frame)
    assert kind == Kind.RESIZE and len(frame) == protocol.HEADER.size + length
    assert json.loads(frame[protocol.HEADER.size :]) == {"cols": 132, "rows": 43}
    await stream.close()
    agent.close()


async def test_a_resize_with_a_pty_sets_its_window_size_and_sends_no_frame() -> None:
    master, slave = raw_pty()
    stream, agent = await connected(os.dup(master))
    await stream.resize(0, 0)
    await stream.resize(132, 43)
    assert window_size(slave) == (132, 43)
    await stream.resize(0, 0)
    assert window_size(slave) == (2, 2)
    assert received(agent) == b""
    await stream.close()
    agent.close()
    os.close(master)
    os.close(slave)


async def lent_stream() -> tuple[TerminalStream, socket.socket, int, ReplayBuffer]:
    """A stream lent the reading of a real PTY (with its own replay buffer), and the PTY's slave."""
    master, slave = raw_pty()
    replay = ReplayBuffer(4096)
    ours, agent = socket.socketpair()
    transport, receiver = await asyncio.get_running_loop().create_unix_connection(FrameReceiver, sock=ours)
    agent.setblocking(False)
    stream = TerminalStream(transport, receiver, pty_fd=master, replay_fd=os.dup(replay.fd))
    agent.send(protocol.encode_json(Kind.EVENT, {"type": "lend"}))
    await until(lambda: stream.lent)
    return stream, agent, slave, replay


async def test_a_lent_stream_reads_the_pty_into_the_replay_and_gives_it_back_when_asked() -> None:
    stream, agent, slave, replay = await lent_stream()
    os.write(slave, b"read by the web tier")
    kind, payload = present(await asyncio.wait_for(stream.read(), 1))
    assert (kind, payload) == (Kind.DATA, b"read by the web tier")
    assert replay.contents() == b"read by the web tier"
    agent.send(protocol.encode_json(Kind.EVENT, {"type": "give_back"}))
    await until(lambda: not stream.lent)
    assert received(agent) == protocol.encode(Kind.GIVEN)
    os.write(slave, b"left for the agent")
    await asyncio.sleep(0.05)
    assert stream.pty is not None and os.read(stream.pty.fd, 100) == b"left for the agent"  # nobody read it
    await stream.close()
    replay.close()
    os.close(slave)
    agent.close()


async def test_a_lent_stream_with_a_full_queue_stops_reading_the_pty_but_still_hears_give_back(monkeypatch) -> None:
    monkeypatch.setattr(stream_module, "QUEUE_LIMIT", 1000)
    stream, agent, slave, replay = await lent_stream()
    os.write(slave, b"x" * 3000)  # nobody reads the stream: it queues, then stops reading the PTY
    await until(lambda: stream.receiver.reading_paused)
    await asyncio.sleep(0.05)
    os.write(slave, b"y" * 10)
    await asyncio.sleep(0.05)
    assert b"y" not in b"".join(f[1] for f in stream.receiver.frames if f is not None and f[0] == Kind.DATA)
    agent.send(protocol.encode_json(Kind.EVENT, {"type": "give_back"}))  # a second viewer attaches
    await until(lambda: not stream.lent)
    assert received(agent) == protocol.encode(Kind.GIVEN)
    await stream.close()
    replay.close()
    os.close(slave)
    agent.close()
