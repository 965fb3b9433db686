"""Waiting on the running event loop until a non-blocking descriptor can be read or written."""

from __future__ import annotations

import asyncio


async def ready(fd: int, write: bool = False) -> None:
    """Return once ``fd`` is readable (``write``: writable), as the running loop's selector sees
    it; cancelling the wait stops watching ``fd``."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    watch, unwatch = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    watch(fd, wake)
    try:
        await future
    finally:
        unwatch(fd)
