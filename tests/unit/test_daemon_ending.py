"""A root daemon's end (sandbox.host.daemon): a task or a thread that does not end must not keep the
process alive, and what it waited for is written out."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time

import pytest

from sandbox.host import daemon


async def test_tasks_that_end_when_cancelled_are_all_gone_and_none_is_reported() -> None:
    sleepers = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
    assert await daemon.end_other_tasks(1.0) == []
    assert all(task.cancelled() for task in sleepers)


async def test_a_task_that_ignores_its_cancellation_is_returned_and_logged_with_its_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn_cleanup() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()  # a cleanup that waits for what never comes

    stuck = asyncio.create_task(stubborn_cleanup(), name="stubborn")
    polite = asyncio.create_task(asyncio.sleep(60))
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="sandbox.daemon"):
        left = await daemon.end_other_tasks(0.2)
    assert time.monotonic() - started < 2
    assert left == [stuck] and polite.cancelled()
    assert "task stubborn did not end within 0.2 s of the stop" in caplog.text
    assert "stubborn_cleanup" in caplog.text  # its stack says where it waits
    release.set()
    await stuck


def test_a_process_whose_thread_never_ends_still_exits_and_says_where_the_thread_waits() -> None:
    script = textwrap.dedent(
        """
        import threading
        from sandbox.host import daemon

        def wait_forever():
            threading.Event().wait()

        threading.Thread(target=wait_forever, name="blocked").start()  # joined at exit: never ends
        daemon.exit_within(0.5)
        """
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert "wait_forever" in done.stderr
