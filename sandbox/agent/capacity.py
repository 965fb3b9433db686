"""The host's capacity: free sandbox slots (PLAYGROUND_HOST_MAX_SANDBOXES, live and pooled
sandboxes counted) and the warm pool that fills them ahead of visitors.

A visitor's create takes a pooled sandbox when one fits (:meth:`Capacity.take_warm`), else makes
room for a cold start (:meth:`Capacity.make_room`): it evicts a pooled sandbox, waits briefly for a
slot about to free up, or refuses with ``at_capacity``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.warmpool import WarmPool
from sandbox.wire.protocol import AgentError

WARM_WAIT = 20.0  # seconds a create on a full host waits for a pooled sandbox being started


class Capacity:
    """Counts the host's sandboxes against ``limit`` and owns the warm pool."""

    def __init__(
        self,
        limit: int,
        registry: Registry,
        warm_sizes: dict[str, int],
        build: Callable[[str, str], Awaitable[Sandbox]],
        discard: Callable[[Sandbox], Awaitable[None]],
    ) -> None:
        """``warm_sizes``, ``build`` and ``discard`` are the warm pool's (see :class:`WarmPool`)."""
        self.limit = limit
        self.registry = registry
        self.warm: WarmPool[Sandbox] = WarmPool(warm_sizes, build, discard, self.room)

    def room(self) -> int:
        """Free sandbox slots on this host (PLAYGROUND_HOST_MAX_SANDBOXES), pooled ones counted."""
        return self.limit - len(self.registry.sandboxes) - self.warm.count()

    async def take_warm(self, image: str, hostname: str) -> Sandbox | None:
        """A pooled sandbox for a visitor's create, if one fits; the caller owns it from now on.

        On a full host, a pooled sandbox still being started is the visitor's best chance: wait for it.
        """
        warm = self.warm.take(image, hostname)
        if warm is not None:
            return warm
        deadline = time.monotonic() + WARM_WAIT
        while self.room() < 0 and self.warm.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            warm = self.warm.take(image, hostname)
            if warm is not None:
                return warm
        return None

    async def make_room(self) -> None:
        """Before a cold start (the new sandbox is already counted): evict a pooled one or refuse."""
        deadline = time.monotonic() + WARM_WAIT
        while self.room() < 0:
            if await self.warm.evict():
                continue
            if (self.registry.destroying or self.warm.busy) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # a slot is about to free up
                continue
            if self.room() < 0:
                raise AgentError(
                    "at_capacity",
                    f"this host already runs its maximum of {self.limit} "
                    "sandboxes (PLAYGROUND_HOST_MAX_SANDBOXES); try again when a session ends",
                )
