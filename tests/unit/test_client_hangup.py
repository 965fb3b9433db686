"""The agent ends a lab script's work when its client hangs up before the reply
(sandbox.agent.dispatch.while_client_waits)."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.agent.dispatch import while_client_waits
from sandbox.agent.requestfields import Reply


class Work:
    """A request's work that waits until released, noting whether it was cancelled and cleaned up."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cleaned_up = False

    async def __call__(self) -> Reply:
        try:
            await self.release.wait()
            return {"code": 0}
        finally:
            self.cleaned_up = True


async def test_work_that_ends_first_gives_its_reply_and_leaves_no_read_behind() -> None:
    work, reader = Work(), asyncio.StreamReader()
    work.release.set()
    assert await while_client_waits(work(), reader) == {"code": 0}
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_client_that_hangs_up_ends_the_work_before_the_error() -> None:
    work, reader = Work(), asyncio.StreamReader()
    waiting = asyncio.create_task(while_client_waits(work(), reader))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    reader.feed_eof()  # the client closed the connection
    with pytest.raises(ConnectionError, match="closed the connection before the reply"):
        await asyncio.wait_for(waiting, 2)
    assert work.cleaned_up


async def test_a_handler_cancelled_itself_cancels_the_work_too() -> None:
    work, reader = Work(), asyncio.StreamReader()
    waiting = asyncio.create_task(while_client_waits(work(), reader))
    await asyncio.sleep(0.05)
    waiting.cancel()  # the agent stopping
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)
    assert work.cleaned_up
