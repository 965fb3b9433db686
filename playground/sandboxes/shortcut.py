"""A shorter path for keystrokes and output under Daphne (measured by ``make bench``).

Under Daphne a websocket frame reaches a consumer through an asyncio queue, a task that waits on
it, Channels' ``await_many_dispatch`` (``asyncio.wait`` and a new task per message) and then
``receive``; output goes back through ``send``, Daphne's ``handle_reply`` and
``serverSend``. That is several turns of the event loop for each keystroke, about as long as
the whole trip through the agent and the shell. :class:`Shortcut` lets the terminal consumer
take input frames straight from Daphne's websocket protocol (``onMessage``), synchronously,
and send output frames straight to it (``sendMessage``).

Order is kept: the shortcut is installed before the connection is accepted, so no frame can
have been queued before it, and an input frame takes the short path only while no earlier
frame is still queued or being handled (``queued == 0``) and the consumer can write it to the
agent at once; otherwise it is queued like any other frame and handled in order. Under another
ASGI server (or Channels' test communicator) there is no Daphne protocol and nothing changes.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("playground.terminal")


class Taker(Protocol):
    def take_input_now(self, data: bytes) -> bool:
        """Write ``data`` to the terminal at once if that can be done without waiting; whether it was."""


def daphne_protocol(send: Callable[..., Any]) -> Any | None:
    """The Daphne ``WebSocketProtocol`` behind an ASGI ``send`` (Daphne passes
    ``functools.partial(server.handle_reply, protocol)``), or None under another server."""
    return send.args[0] if isinstance(send, functools.partial) and send.args else None


class Shortcut:
    """Input frames straight from Daphne's protocol, output frames straight to it."""

    def __init__(self, protocol: Any, taker: Taker) -> None:
        self.protocol = protocol
        self.taker = taker
        self.queued = 0  # frames handed to Daphne's queue and not yet handled by the consumer
        self._queue_frame = protocol.onMessage
        protocol.onMessage = self._on_message

    @classmethod
    def install(cls, send: Callable[..., Any], taker: Taker) -> Shortcut | None:
        protocol = daphne_protocol(send)
        needed = ("onMessage", "sendMessage", "transport", "STATE_OPEN")
        return cls(protocol, taker) if all(hasattr(protocol, name) for name in needed) else None

    def _on_message(self, payload: bytes, is_binary: bool) -> None:
        if (
            is_binary
            and self.queued == 0
            and payload[:1] == b"\x00"
            and not getattr(self.protocol, "muted", False)
            and self.taker.take_input_now(payload[1:])
        ):
            self.protocol.last_ping = time.time()  # what Daphne's onMessage records
            return
        self.queued += 1
        self._queue_frame(payload, is_binary)

    def handled(self) -> None:
        """The consumer finished one frame that was queued."""
        self.queued -= 1

    def send_output(self, frame: bytes) -> bool:
        """Send a binary frame now; False if the connection is not open (the caller drops it)."""
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return False
        protocol.sendMessage(frame, True)
        # Write it now rather than on the reactor's next turn. A failure is left to the reactor:
        # the transport stays registered for writing until its buffer is empty, and the reactor's
        # own doWrite then reports the lost connection.
        protocol.transport.doWrite()
        return True
