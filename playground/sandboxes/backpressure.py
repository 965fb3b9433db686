"""Backpressure from a browser's websocket to the terminal output it is sent.

An ASGI application cannot see whether its websocket client keeps up: Daphne's
``websocket.send`` returns at once, having written the message into Twisted's transport
buffer, which grows without bound while the client does not read (measured by ``make bench``:
a client that stopped reading during ``head -c 1G /dev/zero | base64`` grew Daphne by 84 MiB in
5 seconds, and would have grown it by the whole gigabyte and more).

Twisted has the signal we need: a *streaming producer* registered on a transport is paused
when the transport buffers more than its ``bufferSize`` (64 KiB) and resumed when the buffer is
empty again. Autobahn's websocket protocol, which Daphne's ``WebSocketProtocol`` extends,
offers ``registerProducer`` for exactly this. Daphne hands an application ``send`` as
``functools.partial(server.handle_reply, protocol)``; :func:`open_window` finds the protocol
there and registers a :class:`SendWindow` on it. A transport takes one producer, and Daphne
leaves the HTTP channel that received the upgrade request registered there (Twisted's
``HTTPChannel`` registers itself on every connection): after the upgrade it has nothing left to
produce, and when the buffer filled it would only stop reading the client's input, so the
window takes its place. The terminal consumer waits for the window
before sending more output, so a client that stops reading stops the agent reading the PTY
(see ``sandbox/pty/terminal.py``), and the shell blocks in the kernel instead of any buffer
growing.

Under another ASGI server (or ``WebsocketCommunicator`` in tests) ``open_window`` returns None
and output is sent without waiting, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.web.http import HTTPChannel
from zope.interface import implementer

from playground.sandboxes.shortcut import daphne_protocol

log = logging.getLogger("playground.terminal")


@implementer(IPushProducer)
class SendWindow:
    """Open while the connection's send buffer is below Twisted's limit.

    Twisted calls ``pauseProducing`` when the buffer is full, ``resumeProducing`` when it is
    empty and ``stopProducing`` when the connection is gone (the window then stays open so that
    nobody waits for a connection that will never drain). All on the event loop's thread: Daphne
    runs Twisted on the asyncio loop that runs the consumers.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait(self) -> None:
        """Return once the client has taken what was sent (at once if it has)."""
        if not self._open.is_set():
            await self._open.wait()

    def pauseProducing(self) -> None:
        self._open.clear()

    def resumeProducing(self) -> None:
        self._open.set()

    def stopProducing(self) -> None:
        self._open.set()


def open_window(send: Callable[..., Any]) -> SendWindow | None:
    """Register a :class:`SendWindow` on the Daphne connection behind an ASGI ``send``;
    None when ``send`` is not Daphne's (no backpressure is then available)."""
    protocol = daphne_protocol(send)
    register = getattr(protocol, "registerProducer", None)
    transport = getattr(protocol, "transport", None)
    if register is None or transport is None:
        log.debug("no websocket backpressure under this ASGI server (send is %r)", send)
        return None
    previous = getattr(transport, "producer", None)
    if isinstance(previous, HTTPChannel):  # left from the upgrade request
        transport.unregisterProducer()
    elif previous is not None:
        log.warning("cannot follow the websocket's send buffer: %r is registered on it", previous)
        return None
    window = SendWindow()
    register(window, True)
    return window
