"""The terminal websocket's protocol as the browser sees it, and what a viewer offers (the contract:
"Terminal websocket (public contract)" in docs/architecture.md).

Binary frames whose first byte is an opcode. From the browser: 0x00 input, 0x01 resize (JSON
``{"cols", "rows"}``), 0x02 pause, 0x03 resume. To the browser: 0x00 output. Text frames carry
JSON events (status, expiry, warning, error, exit). Close codes: 4403 forbidden, 4404 unknown,
4410 session ended, 4503 sandbox host unavailable (the page reconnects), 1000 a tab that ended.

Pure (no Django, no I/O) apart from :class:`Viewer`, the side of the consumer that
:mod:`~playground.sandboxes.clock` and :mod:`~playground.sandboxes.bridge` call back into.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sandbox.wire.protocol import Kind

CLOSE_NORMAL = 1000
CLOSE_FORBIDDEN, CLOSE_UNKNOWN, CLOSE_ENDED = 4403, 4404, 4410
# The sandbox host is unreachable (the agent restarts): the client reconnects. Not 1011, which a
# server may not send through Daphne (autobahn accepts only 1000 and 3000-4999 from a server).
CLOSE_UNAVAILABLE = 4503

OPCODES = {0: Kind.DATA, 1: Kind.RESIZE, 2: Kind.PAUSE, 3: Kind.RESUME}
OUTPUT = b"\x00"  # the opcode that starts every output frame


class BadFrame(Exception):
    """A frame the browser should not have sent; ``code`` and ``message`` make its ``error`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode(bytes_data: bytes | None) -> tuple[Kind, bytes]:
    """A frame's kind and payload; raises :class:`BadFrame` for a text frame (None) or an unknown opcode."""
    if bytes_data is None:
        raise BadFrame("text_frame", "Send terminal frames as binary: one opcode byte, then the payload.")
    if not bytes_data or bytes_data[0] not in OPCODES:
        raise BadFrame(
            "bad_opcode", "Unknown frame; the first byte must be 0 (input), 1 (resize), 2 (pause) or 3 (resume)."
        )
    return OPCODES[bytes_data[0]], bytes_data[1:]


def parse_size(payload: bytes) -> tuple[int, int]:
    """``(cols, rows)`` of a resize frame's JSON; raises :class:`BadFrame` when it is not one.
    Not clamped here: the agent clamps sizes to sane bounds."""
    try:
        size = json.loads(payload)
        return int(size["cols"]), int(size["rows"])
    except (ValueError, TypeError, KeyError, OverflowError):
        raise BadFrame("bad_resize", 'A resize frame needs JSON like {"cols": 80, "rows": 24}.')


def event(type_: str, **fields: Any) -> str:
    """The text frame of one JSON event."""
    return json.dumps({"type": type_, **fields})


class Viewer(Protocol):
    """One browser connection, as the session clock and the terminal bridge use it."""

    closed: bool  # True once the connection is closing: nothing more is sent

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Send a frame to the browser (Channels' ``send``)."""

    async def send_event(self, type_: str, **fields: Any) -> None:
        """Send a JSON event unless the connection is closing."""

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close with ``code``, once."""

    async def refuse(self, code: int, error: str, message: str) -> None:
        """Send an ``error`` event, then close with ``code``."""

    async def end(self, reason: str) -> None:
        """The session ended for ``reason``: send ``exit``, then close with 4410."""

    def live(self) -> bool:
        """Connected, and the session's deadline (as this viewer knows it) has not passed."""

    async def stream_ended(self) -> None:
        """The agent's terminal stream ended without the viewer closing it: close with the reason."""
