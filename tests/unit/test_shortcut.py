"""The terminal's short path under Daphne: input straight from the protocol, in order."""

from __future__ import annotations

import functools

from playground.sandboxes.shortcut import Shortcut


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffer: list[bytes] = []

    def doWrite(self) -> None:
        self.written += self.buffer
        self.buffer = []


class Protocol:
    """What the shortcut uses of Daphne's WebSocketProtocol; ``queue`` is Daphne's application queue."""

    STATE_OPEN = 1
    STATE_CLOSING = 2

    def __init__(self) -> None:
        self.state = self.STATE_OPEN
        self.muted = False
        self.last_ping = 0.0
        self.transport = Transport()
        self.queue: list[tuple[bytes, bool]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.queue.append((payload, isBinary))

    def sendMessage(self, payload: bytes, isBinary: bool) -> None:
        self.transport.buffer.append(payload)


class Taker:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.taken: list[bytes] = []

    def take_input_now(self, data: bytes) -> bool:
        if self.accept:
            self.taken.append(data)
        return self.accept


def daphne_send(protocol: Protocol) -> functools.partial[None]:
    async def handle_reply(protocol: Protocol, message: dict[str, object]) -> None: ...

    return functools.partial(handle_reply, protocol)


def installed(taker: Taker) -> tuple[Protocol, Shortcut]:
    protocol = Protocol()
    shortcut = Shortcut.install(daphne_send(protocol), taker)
    assert shortcut is not None
    return protocol, shortcut


def test_input_frames_go_straight_to_the_consumer_while_nothing_is_queued() -> None:
    taker = Taker()
    protocol, _ = installed(taker)
    protocol.onMessage(b"\x00ls\r", True)
    assert taker.taken == [b"ls\r"]
    assert protocol.queue == []
    assert protocol.last_ping > 0


def test_frames_behind_a_queued_frame_are_queued_too_until_it_is_handled() -> None:
    taker = Taker()
    protocol, shortcut = installed(taker)
    protocol.onMessage(b'\x01{"cols": 80, "rows": 24}', True)  # a resize always takes the queue
    protocol.onMessage(b"\x00stty size\r", True)
    assert taker.taken == []
    assert [p for p, _ in protocol.queue] == [b'\x01{"cols": 80, "rows": 24}', b"\x00stty size\r"]
    shortcut.handled()
    shortcut.handled()
    protocol.onMessage(b"\x00x", True)
    assert taker.taken == [b"x"]


def test_input_the_consumer_cannot_take_at_once_is_queued_in_order() -> None:
    taker = Taker(accept=False)
    protocol, _ = installed(taker)
    protocol.onMessage(b"\x00a", True)
    taker.accept = True
    protocol.onMessage(b"\x00b", True)
    assert taker.taken == []
    assert [p for p, _ in protocol.queue] == [b"\x00a", b"\x00b"]


def test_text_frames_and_muted_connections_take_daphnes_path() -> None:
    taker = Taker()
    protocol, _ = installed(taker)
    protocol.onMessage(b"\x00hello", False)
    protocol.muted = True
    protocol.onMessage(b"\x00x", True)
    assert taker.taken == []
    assert len(protocol.queue) == 2


def test_output_is_written_at_once_while_open_and_refused_after() -> None:
    protocol, shortcut = installed(Taker())
    assert shortcut.send_output(b"\x00out")
    assert protocol.transport.written == [b"\x00out"]
    protocol.state = protocol.STATE_CLOSING
    assert not shortcut.send_output(b"\x00late")
    assert protocol.transport.written == [b"\x00out"]


def test_there_is_no_shortcut_under_another_asgi_server() -> None:
    async def send(message: dict[str, object]) -> None: ...

    assert Shortcut.install(send, Taker()) is None
