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
from sandbox.agent.groups import Groups
from sandbox.agent.provisioning import Provisioner
from sandbox.agent.recordings import Recordings
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Reply, Request
from sandbox.images.store import Image, ImageError, ImageStore
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
    groups: Groups
    recordings: Recordings

    async def create(self, request: Request) -> Reply:
        """Create sandbox ``id`` with ``hostname`` from ``image`` (default: the default image), a
        member of ``group`` if given (see :mod:`sandbox.agent.groups`), its terminals recorded if
        ``record`` is true (see :mod:`sandbox.agent.recordings`): ``{"sandbox": {...},
        "created": bool}``, False if it already existed. The reply comes once its group's members
        reach and name it.

        A ready pooled sandbox of that image is taken before anything else, without reading the
        image from the store again: it was started from it, and an image in use cannot be removed."""
        sandbox_id = requestfields.sandbox_id(request)
        hostname = requestfields.hostname(request)
        group = requestfields.group(request)
        recorded = requestfields.flag(request, "record")
        image_name = str(request.get("image", self.default_image))
        sandboxes = self.registry.sandboxes
        if sandbox_id in sandboxes:
            return await self._made_already(sandbox_id, request)
        warm = self.capacity.warm.take(image_name, hostname)
        image = await self._image(image_name) if warm is None else None
        if sandbox_id in sandboxes:  # another create of it began while the image was read
            return await self._made_already(sandbox_id, request)
        sandbox = Sandbox(sandbox_id, hostname, image_name if image is None else image.name, time.time())
        sandbox.group, sandbox.recorded = group, recorded
        sandboxes[sandbox_id] = sandbox
        async with sandbox.lock:
            started = time.perf_counter()
            try:
                if image is not None:
                    warm = await self.capacity.take_warm(image.name, hostname)  # on a full host, one being started
                    if warm is None:
                        await self.capacity.make_room()
                        await self.provisioner.start(sandbox, image)
                if warm is not None:
                    sandbox.runtime_id, sandbox.network, sandbox.created = (
                        warm.runtime_id,
                        warm.network,
                        warm.created,
                    )
                    sandbox.terminal, sandbox.id_range = warm.terminal, warm.id_range
                if sandbox.terminal is not None:
                    self.recordings.start(sandbox, 0, sandbox.terminal, fresh=True)
                self.provisioner.record(sandbox)
                await self.groups.joined(sandbox)
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
            sandbox.image,
            (time.perf_counter() - started) * 1000,
            f" (warm {sandbox.runtime_id})" if warm else "",
        )
        return {"sandbox": sandbox.describe(), "created": True}

    async def _made_already(self, sandbox_id: str, request: Request) -> Reply:
        """A repeated create (the worker's after a viewer's early one, or a retry): answered once the
        sandbox is made, ``created`` False, never while it is half made. If that create failed (the
        sandbox is gone again), this one creates it anew."""
        sandbox = self.registry.sandboxes[sandbox_id]
        async with sandbox.lock:  # held by the create in progress, if there is one
            pass
        if self.registry.sandboxes.get(sandbox_id) is sandbox:
            return {"sandbox": sandbox.describe(), "created": False}
        return await self.create(request)

    async def _image(self, name: str) -> Image:
        """The stored image ``name`` (built first if it is the busybox builder's and missing); AgentError
        ``unknown_image`` if there is none."""
        try:
            return await asyncio.to_thread(self.images.get, name)
        except ImageError as exc:
            raise AgentError("unknown_image", str(exc)) from None

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
                    await self.groups.leaving(sandbox)  # before its address is released
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
