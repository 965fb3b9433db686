"""The agent's wire protocol: length-prefixed frames over a unix stream socket.

A frame is one byte of kind, four bytes of big-endian payload length, then the payload.
A connection starts with one REQUEST frame (UTF-8 JSON ``{"op": ..., ...}``) and gets one
REPLY frame (``{"ok": true, ...}`` or ``{"ok": false, "error": code, "message": sentence}``).
After a successful ``attach`` the connection becomes a terminal stream: the client sends
INPUT, RESIZE (JSON ``{"cols", "rows"}``), PAUSE and RESUME; the agent sends OUTPUT and
EVENT (JSON, e.g. ``{"type": "exit", "code": 0}``).

An ``attach`` with ``"pty": true`` gets, attached to its REPLY frame (SCM_RIGHTS), duplicates of
the terminal's PTY master and of its replay memfd: the client then writes input and window
sizes to the PTY itself, one process hop fewer for every keystroke, and sends TYPED (no
payload) after each write so the agent sends the echo at once instead of batching it. While it
is the only viewer the agent also lends it the reading: after a ``{"type": "lend"}`` event the
client reads the PTY and appends to the replay itself, until it gets ``{"type": "give_back"}``
(another viewer attaches), stops reading and answers GIVEN; a client that reads the end of
the PTY stops and sends GIVEN unasked, and the agent, reading again, reports the exit.
A terminal of a sandbox created with ``"record": true`` is never lent: the agent reads it and
records it (asciicast v2, :mod:`sandbox.wire.asciicast`); the ``mark`` op puts a marker into the
recordings of a sandbox. Both were added compatibly: an older client sends neither. So were the
``reserve_warm`` and ``warm`` ops (extra pooled sandboxes a holder wants for a while, and how
many are ready: :mod:`sandbox.agent.reserving`).

The frame kinds of the stream match the browser's opcodes (docs/architecture.md, "Terminal websocket"), so the web tier
forwards browser frames after checking them.
"""

from __future__ import annotations

import asyncio
import json
import struct
from enum import IntEnum
from typing import Any

HEADER = struct.Struct(">BI")
MAX_PAYLOAD = 1024 * 1024
MAX_TERMINAL = 2**31 - 1  # the largest terminal number a request may name (0 is a sandbox's first shell)


class Kind(IntEnum):
    """Frame kinds. 0-3 are the terminal opcodes shared with the browser."""

    DATA = 0  # client: input bytes; agent: output bytes
    RESIZE = 1
    PAUSE = 2
    RESUME = 3
    TYPED = 4  # client: it wrote input to the PTY itself (an ``attach`` with ``"pty": true``)
    GIVEN = 5  # client: it stopped reading the PTY it was lent (see sandbox.pty.terminal)
    REQUEST = 16
    REPLY = 17
    EVENT = 18


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


class AgentError(Exception):
    """The agent refused or failed a request; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    """One frame as bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"frame of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    return HEADER.pack(kind, len(payload)) + payload


def encode_json(kind: Kind, message: dict[str, Any]) -> bytes:
    """One frame carrying a JSON object."""
    return encode(kind, json.dumps(message, separators=(",", ":")).encode())


def encode_reply(fields: dict[str, Any]) -> bytes:
    """The REPLY frame granting a request: ``{"ok": true, **fields}``."""
    return encode_json(Kind.REPLY, {"ok": True, **fields})


def encode_refusal(code: str, message: str) -> bytes:
    """The REPLY frame refusing a request: ``{"ok": false, "error": code, "message": message}``."""
    return encode_json(Kind.REPLY, {"ok": False, "error": code, "message": message})


async def read_frame(reader: asyncio.StreamReader) -> tuple[Kind, bytes] | None:
    """The next frame, or None at a clean end of stream. Raises ProtocolError on garbage."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed in the middle of a frame header") from None
        return None
    kind_value, length = HEADER.unpack(header)
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"frame of {length} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    try:
        kind = Kind(kind_value)
    except ValueError:
        raise ProtocolError(f"unknown frame kind {kind_value}") from None
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed in the middle of a frame") from None
    return kind, payload


def decode_json(payload: bytes) -> dict[str, Any]:
    """A JSON object from a frame payload; ProtocolError if it is not one."""
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"payload is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("payload is not a JSON object")
    return value
