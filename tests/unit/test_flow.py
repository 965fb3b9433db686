"""The send window: how the terminal consumer learns that a websocket client stopped reading."""

from __future__ import annotations

import asyncio
import functools

from twisted.web.http import HTTPChannel

from playground.sandboxes.backpressure import SendWindow, open_window


class Transport:
    """Twisted's producer bookkeeping of a transport, nothing else."""

    def __init__(self, producer: object = None) -> None:
        self.producer = producer

    def registerProducer(self, producer: object, streaming: bool) -> None:
        assert self.producer is None, "Twisted refuses a second producer"
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


class Protocol:
    """Daphne's websocket protocol as autobahn shapes it: registerProducer passes to the transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def registerProducer(self, producer: object, streaming: bool) -> None:
        self.transport.registerProducer(producer, streaming)


def daphne_send(protocol: Protocol) -> functools.partial[None]:
    async def handle_reply(protocol: Protocol, message: dict[str, object]) -> None: ...

    return functools.partial(handle_reply, protocol)


async def test_the_window_takes_the_place_of_the_http_channel_left_from_the_upgrade() -> None:
    transport = Transport(HTTPChannel())
    window = open_window(daphne_send(Protocol(transport)))
    assert isinstance(window, SendWindow)
    assert transport.producer is window


async def test_another_producer_is_left_alone() -> None:
    other = object()
    transport = Transport(other)
    assert open_window(daphne_send(Protocol(transport))) is None
    assert transport.producer is other


async def test_a_send_that_is_not_daphnes_gives_no_window() -> None:
    async def send(message: dict[str, object]) -> None: ...

    assert open_window(send) is None


async def test_waiting_lasts_from_a_pause_to_the_resume_or_the_end_of_the_connection() -> None:
    window = SendWindow()
    await asyncio.wait_for(window.wait(), 1)  # open from the start
    for end in (window.resumeProducing, window.stopProducing):
        window.pauseProducing()
        waiter = asyncio.ensure_future(window.wait())
        await asyncio.sleep(0.01)  # the point: a while in which the waiter, paused, keeps waiting
        assert not waiter.done(), "wait() returned while paused"
        end()
        await asyncio.wait_for(waiter, 1)
