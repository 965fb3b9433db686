"""A request's work ended when its client hangs up before it is answered.

A client that has nothing to send while its request is served (a lab check's ``run`` until its
reply; a file transfer until its reply, or until an upload is told to send) closes the connection
only when it gives up on it: its own deadline passed, its browser went away. Work that is only
worth finishing for a client still waiting is then ended where it is: waiting for its turn among
the host's (:mod:`sandbox.runtime.turns`), it gives its place up; running, its script is killed
with all it started, as at its timeout. Other ops (create, destroy...) finish whatever the client
does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class HangUpWatch:
    """Watches a connection whose client sends nothing for now, for the client closing it.

    Made once the request is read: from then on what ``reader`` brings (its end, or a byte the
    client should not have sent) means the client is done with the request. :meth:`stop` ends the
    watch when the client is told to send (an upload's bytes), leaving what it sends unread.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._read = asyncio.ensure_future(reader.read(1))

    def stop(self) -> None:
        """Stop watching: the client sends from now on. The watch's read is cancelled before any
        read the caller starts after this call runs (asyncio runs them in the order scheduled),
        so the two never wait on the reader at once."""
        self._read.cancel()

    async def run(self, work: Awaitable[T]) -> T:
        """``work``'s result, unless the client hangs up first, before :meth:`stop`: then ``work`` is
        cancelled, which ends what it started and gives back its turn, and ConnectionError is raised
        once its cleanup is done."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task, self._read}, return_when=asyncio.FIRST_COMPLETED)
            if task.done() or self._read.cancelled():  # answered, or the watch stopped: the work goes on
                return await task
            task.cancel()
            await asyncio.wait({task})  # its cleanup done (without taking this task's own cancellation)
            raise ConnectionError("the client closed the connection before the reply")
        finally:
            self._read.cancel()
            task.cancel()  # the connection's handler itself cancelled (the agent stopping)


async def while_client_waits(work: Awaitable[T], reader: asyncio.StreamReader) -> T:
    """``work``'s result, unless the client of ``reader``, which sends nothing until it is answered,
    closes the connection first (see :class:`HangUpWatch`)."""
    return await HangUpWatch(reader).run(work)
