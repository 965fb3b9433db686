"""The sandboxes this agent tracks, by the visitor's sandbox id: which are live, which are being
destroyed, and waiting for one that is being created.

A sandbox is in :attr:`Registry.sandboxes` from the moment its creation starts (its ``terminal``
is None until it runs) until its destruction ends. Nothing here touches the host.
"""

from __future__ import annotations

import asyncio

from sandbox.agent import requestfields
from sandbox.agent.records import Sandbox
from sandbox.agent.requestfields import Request
from sandbox.wire.protocol import AgentError


class Registry:
    """Every sandbox of this agent, and the attachers waiting for one to exist."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, Sandbox] = {}
        self.destroying: set[str] = set()  # sandboxes being destroyed (their slots free up soon)
        self._created: dict[str, asyncio.Event] = {}  # attachers waiting for a sandbox to exist
        self._waiting: dict[str, int] = {}  # how many attachers wait on each of those events

    def live(self, request: Request, key: str = "id") -> Sandbox:
        """The running sandbox the request names under ``key``; AgentError ``unknown_sandbox`` if
        there is none, or it is being destroyed."""
        sandbox_id = requestfields.sandbox_id(request, key)
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.terminal is None or sandbox_id in self.destroying:
            raise AgentError("unknown_sandbox", f"no sandbox {sandbox_id} on this host")
        return sandbox

    def announce(self, sandbox_id: str) -> None:
        """Wake attachers waiting for ``sandbox_id`` (it now exists, or its creation failed)."""
        event = self._created.pop(sandbox_id, None)
        if event is not None:
            event.set()

    async def wait_for_terminal(self, sandbox_id: str, wait: float) -> Sandbox | None:
        """The sandbox ``sandbox_id``, waiting up to ``wait`` seconds for it to exist and run if it
        does not yet; None if it still does not exist."""
        sandbox = self.sandboxes.get(sandbox_id)
        if (sandbox is None or sandbox.terminal is None) and wait > 0:
            event = self._created.setdefault(sandbox_id, asyncio.Event())
            self._waiting[sandbox_id] = self._waiting.get(sandbox_id, 0) + 1
            try:
                await asyncio.wait_for(event.wait(), wait)
            except TimeoutError:
                pass
            finally:
                self._waiting[sandbox_id] -= 1
                if not self._waiting[sandbox_id]:  # the last waiter cleans up, even if nothing came
                    del self._waiting[sandbox_id]
                    if self._created.get(sandbox_id) is event:
                        del self._created[sandbox_id]
            sandbox = self.sandboxes.get(sandbox_id)
        return sandbox
