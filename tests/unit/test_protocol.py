"""The agent's framing: what it accepts and what it refuses."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.wire import protocol
from sandbox.wire.protocol import Kind, ProtocolError
from sandbox.wire.ptyio import clamp_size


def reader_with(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_a_reply_grants_with_its_fields_and_a_refusal_carries_its_code_and_sentence() -> None:
    reader = reader_with(protocol.encode_reply({"id": "x"}) + protocol.encode_refusal("busy", "Try later."))
    granted, refused = await protocol.read_frame(reader), await protocol.read_frame(reader)
    assert granted == (Kind.REPLY, b'{"ok":true,"id":"x"}')
    assert refused == (Kind.REPLY, b'{"ok":false,"error":"busy","message":"Try later."}')


async def test_frames_round_trip() -> None:
    data = protocol.encode(Kind.DATA, b"hello") + protocol.encode_json(Kind.REQUEST, {"op": "ping"})
    reader = reader_with(data)
    assert await protocol.read_frame(reader) == (Kind.DATA, b"hello")
    frame = await protocol.read_frame(reader)
    assert frame is not None
    kind, payload = frame
    assert kind == Kind.REQUEST
    assert protocol.decode_json(payload) == {"op": "ping"}
    assert await protocol.read_frame(reader) is None


@pytest.mark.parametrize(
    "data,problem",
    [
        (b"\x00\x00", "header"),
        (b"\x63\x00\x00\x00\x00", "unknown frame kind"),
        (b"\x00\x7f\xff\xff\xff", "exceeds"),
        (b"\x00\x00\x00\x00\x05ab", "middle of a frame"),
    ],
)
async def test_garbage_is_refused_with_a_reason(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        await protocol.read_frame(reader_with(data))


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b"\xff"])
def test_json_payloads_must_be_objects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_json(payload)


def test_oversized_frames_cannot_be_built() -> None:
    with pytest.raises(ProtocolError):
        protocol.encode(Kind.DATA, b"x" * (protocol.MAX_PAYLOAD + 1))


@pytest.mark.parametrize("size,clamped", [((0, 0), (2, 2)), ((100000, 100000), (1000, 500)), ((80, 24), (80, 24))])
def test_terminal_sizes_are_clamped(size: tuple[int, int], clamped: tuple[int, int]) -> None:
    assert clamp_size(*size) == clamped
