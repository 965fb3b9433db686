"""The ``reserve_warm`` and ``warm`` operations: extra pooled sandboxes a holder wants for a while,
and how many are ready.

``reserve_warm`` ``{"holder", "sizes": {image: count}, "ttl": seconds}`` replaces the holder's
reservation in the warm pool (:meth:`sandbox.agent.warmpool.WarmPool.reserve`); ``sizes`` ``{}``
or ``ttl`` 0 drops it. Every image must exist (or be built on first use) and be allowed on this
host (an image of the docker profile needs PLAYGROUND_DOCKER_PROFILE). Both operations answer
the pool's state: ``{"ready": {image: n}, "wanted": {image: n}, "limit": host maximum, "room":
free slots}``. The web tier renews a reservation before its ttl runs out; one that is not renewed
ends, so a web tier that dies does not keep sandboxes forever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sandbox.agent import requestfields
from sandbox.agent.capacity import Capacity
from sandbox.agent.requestfields import Reply, Request
from sandbox.images.store import ImageError, ImageStore
from sandbox.runtime.bundle import DOCKER_PROFILE
from sandbox.wire.protocol import AgentError


@dataclass(eq=False)
class WarmReservations:
    """Serves ``reserve_warm`` and ``warm`` for the pool of ``capacity``."""

    capacity: Capacity
    images: ImageStore
    docker_profile: bool  # whether images of the docker profile may run here (PLAYGROUND_DOCKER_PROFILE)

    async def reserve(self, request: Request) -> Reply:
        """Replace the holder's reservation; bad_request or unknown_image (naming the image) if refused."""
        holder = requestfields.holder(request)
        sizes = requestfields.warm_sizes(request)
        ttl = requestfields.seconds(request, "ttl", requestfields.MAX_RESERVATION_TTL)
        for image in sorted(name for name, count in sizes.items() if count > 0):
            await self._check_image(image)
        self.capacity.warm.reserve(holder, sizes, ttl)
        return await self.status(request)

    async def status(self, request: Request) -> Reply:
        """The pool's state: ready and wanted sandboxes per image, the host's limit and free slots."""
        warm = self.capacity.warm
        return {
            "ready": {image: len(ready) for image, ready in warm.ready.items() if ready},
            "wanted": {image: n for image, n in warm.wanted().items() if n > 0},
            "limit": self.capacity.limit,
            "room": self.capacity.room(),
        }

    async def _check_image(self, name: str) -> None:
        """AgentError unless pooled sandboxes of image ``name`` can start on this host."""
        try:
            image = await asyncio.to_thread(self.images.get, name)
        except ImageError as exc:
            raise AgentError("unknown_image", f"cannot reserve sandboxes of {name}: {exc}") from None
        if image.profile == DOCKER_PROFILE and not self.docker_profile:
            raise AgentError(
                "bad_request",
                f"image {name} runs a Docker engine inside, which this host has turned off "
                "(PLAYGROUND_DOCKER_PROFILE=false); reserve another image",
            )
