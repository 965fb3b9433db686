"""The agent ends a request's work when its client hangs up before the reply, or before an upload
is told to send (sandbox.agent.hangup)."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.agent.hangup import HangUpWatch, while_client_waits
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


async def test_once_the_watch_stops_the_work_goes_on_and_what_the_client_sends_is_left_unread() -> None:
    work, reader = Work(), asyncio.StreamReader()
    watch = HangUpWatch(reader)
    waiting = asyncio.create_task(watch.run(work()))
    await asyncio.sleep(0.05)
    watch.stop()  # the upload is told to send
    await asyncio.sleep(0)
    reader.feed_data(b"the upload's bytes")
    assert await asyncio.wait_for(reader.read(100), 1) == b"the upload's bytes"  # the caller's own read
    reader.feed_eof()
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the end of the bytes is not a hang-up
    work.release.set()
    assert await asyncio.wait_for(waiting, 1) == {"code": 0}
    assert reader.at_eof()


async def test_a_read_started_just_after_stop_does_not_collide_with_the_watchs_own() -> None:
    reader = asyncio.StreamReader()
    watch = HangUpWatch(reader)
    await asyncio.sleep(0)  # the watch's read waits on the reader
    watch.stop()
    caller = asyncio.ensure_future(reader.read(5))  # as an upload's receiver starts, in the same step
    reader.feed_data(b"bytes")
    assert await asyncio.wait_for(caller, 1) == b"bytes"
