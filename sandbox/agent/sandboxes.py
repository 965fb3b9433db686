"""Visitors' sandboxes: ``create`` and ``destroy``.

A create is repeat-safe (an existing id is described, not created again): it takes a pooled
sandbox when one fits, else starts one cold once there is room, then records it for the next
agent and wakes the attachers waiting for it. A destroy removes everything the sandbox had on
the host; one the agent does not know is still looked for on the host (a crash may have left
remains), so it is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sandbox.agent import requestfields
from sandbox.agent.capacity import Capacity
from sandbox.agent.provisioning import Provisioner
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Reply, Request
from sandbox.images.store import ImageError, ImageStore
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.agent")


@dataclass(eq=False)
class Sandboxes:
    """Creates and destroys the sandboxes of ``registry``."""

    default_image: str
    registry: Registry
    images: ImageStore
    capacity: Capacity
    provisioner: Provisioner

    async def create(self, request: Request) -> Reply:
        """Create sandbox ``id`` with ``hostname`` from ``image`` (default: the default image):
        ``{"sandbox": {...}, "created": bool}``, False if it already existed."""
        sandbox_id = requestfields.sandbox_id(request)
        hostname = requestfields.hostname(request)
        image_name = request.get("image", self.default_image)
        sandboxes = self.registry.sandboxes
        if sandbox_id in sandboxes:
            return {"sandbox": sandboxes[sandbox_id].describe(), "created": False}
        try:
            image = await asyncio.to_thread(self.images.get, str(image_name))
        except ImageError as exc:
            raise AgentError("unknown_image", str(exc)) from None
        sandbox = Sandbox(sandbox_id, hostname, image.name, time.time())
        sandboxes[sandbox_id] = sandbox
        async with sandbox.lock:
            started = time.perf_counter()
            warm = await self.capacity.take_warm(image.name, hostname)
            try:
                if warm is not None:
                    sandbox.runtime_id, sandbox.network, sandbox.created = (
                        warm.runtime_id,
                        warm.network,
                        warm.created,
                    )
                    sandbox.terminal, sandbox.id_range = warm.terminal, warm.id_range
                else:
                    await self.capacity.make_room()
                    await self.provisioner.start(sandbox, image)
                self.provisioner.record(sandbox)
            except AgentError:
                sandboxes.pop(sandbox_id, None)
                self.registry.announce(sandbox_id)
                self.capacity.warm.wake()
                raise
        self.registry.announce(sandbox_id)
        log.info(
            "created sandbox %s (%s, image %s) in %.1f ms%s",
            sandbox_id,
            hostname,
            image.name,
            (time.perf_counter() - started) * 1000,
            f" (warm {sandbox.runtime_id})" if warm else "",
        )
        return {"sandbox": sandbox.describe(), "created": True}

    async def destroy_request(self, request: Request) -> Reply:
        """Destroy sandbox ``id``: ``{"destroyed": bool}``, False if the agent did not know it."""
        existed = await self.destroy(requestfields.sandbox_id(request))
        return {"destroyed": existed}

    async def destroy(self, sandbox_id: str) -> bool:
        """Destroy a sandbox; True if the agent knew it. Safe to repeat."""
        sandbox = self.registry.sandboxes.get(sandbox_id)
        if sandbox is not None:
            async with sandbox.lock:
                if self.registry.sandboxes.get(sandbox_id) is not sandbox:
                    return True  # a concurrent destroy finished it while we waited
                self.registry.destroying.add(sandbox_id)
                try:
                    await self.provisioner.remove(sandbox)
                    self.registry.sandboxes.pop(sandbox_id, None)
                finally:
                    self.registry.destroying.discard(sandbox_id)
            self.capacity.warm.wake()
            log.info("destroyed sandbox %s", sandbox_id)
            return True
        await self.provisioner.destroy_host_state(sandbox_id)
        return False

    async def destroy_all(self) -> None:
        """Destroy every sandbox at once (on shutdown); failures are left to the leftovers' removal."""
        ids = list(self.registry.sandboxes)
        log.info("shutting down: destroying %d sandbox(es)", len(ids))
        await asyncio.gather(*(self.destroy(i) for i in ids), return_exceptions=True)
