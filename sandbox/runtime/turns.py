"""Work the agent does in sandboxes, bounded twice: per sandbox, refused at once over the bound, and
per host, where one more waits its turn.

Lab scripts (:mod:`sandbox.runtime.labscripts`) and file transfers (:mod:`sandbox.runtime.files`)
each have a :class:`Turns`. A class of fifty pressing "Check" (or downloading their work) at the same
moment is served in arrival order instead of being refused; one sandbox cannot queue more than its
own bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sandbox.wire.protocol import AgentError


class Turns:
    """At most ``per_sandbox`` pieces of work in one sandbox, running or waiting (one more: AgentError
    ``busy`` at once, ``busy`` formatted with ``n``), and at most ``per_agent`` running on the host
    (one more waits its turn, first come first served, up to ``wait`` seconds; then AgentError
    ``host_busy``, ``host_busy`` formatted with ``n`` and ``wait``)."""

    def __init__(self, per_sandbox: int, per_agent: int, wait: float, busy: str, host_busy: str) -> None:
        self.per_sandbox = per_sandbox
        self.per_agent = per_agent
        self.wait = wait
        self.busy = busy
        self.host_busy = host_busy
        self.free = asyncio.Semaphore(per_agent)
        self.running: dict[str, int] = {}  # runtime id -> pieces of work running or waiting for their turn

    def free_turns(self) -> int:
        """Turns no work holds now."""
        return self.free._value

    @contextlib.asynccontextmanager
    async def slot(self, runtime_id: str) -> AsyncIterator[None]:
        """One piece of work of the sandbox ``runtime_id``, once its turn came (see the class). The
        count and the turn are given back however the block ends, a waiter cancelled (its client
        gone) included."""
        if self.running.get(runtime_id, 0) >= self.per_sandbox:
            raise AgentError("busy", self.busy.format(n=self.per_sandbox))
        self.running[runtime_id] = self.running.get(runtime_id, 0) + 1
        try:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for hands the turn to a waiter
                # cancelled just as its turn came, and the cancellation is lost (gh-86296).
                async with asyncio.timeout(self.wait):
                    await self.free.acquire()
            except TimeoutError:
                raise AgentError(
                    "host_busy", self.host_busy.format(n=self.per_agent, wait=f"{self.wait:.0f}")
                ) from None
            try:
                yield
            finally:
                self.free.release()
        finally:
            self.running[runtime_id] -= 1
            if not self.running[runtime_id]:
                del self.running[runtime_id]
