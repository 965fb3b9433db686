"""Warm pool: sandboxes started ahead of time, so a visitor's "Start" creates nothing.

The pool keeps ``sizes[image]`` sandboxes of each image running, with the hostname of a
session's first instance (``WARM_HOSTNAME``) and their first prompt already printed. ``take``
hands one over in constant time; the agent then knows it by the visitor's sandbox id while
runc, its directory and its cgroups keep the pool's runtime id. A pooled sandbox has never had
a viewer or any input, so nothing needs resetting; one that a visitor used is destroyed with
the session, never returned. Pooled sandboxes count against the host's capacity: the pool
fills only while ``room()`` says there is space, and ``evict`` frees a slot for a visitor's
cold start when the host is full.

The replacement of a sandbox handed over starts REFILL_DELAY later, not at once: starting one
takes tens of milliseconds of CPU (runc, the network, the agent's own work), which on a small
host would otherwise compete with the web tier bringing the visitor its first prompt in the
milliseconds after the hand-over (measured by ``make bench``: about 6 ms of 30 on 2 cores).

Besides the static ``sizes`` (PLAYGROUND_WARM_POOL), holders such as the web tier's workshops
reserve extra sandboxes per image for a while (:meth:`WarmPool.reserve`, the ``reserve_warm``
op): the pool wants the static size plus every unexpired reservation of the image. A sandbox
handed over counts against a reservation of its image (one fewer wanted, so the pool does not
refill what a class takes), and when reservations shrink or expire the surplus ready sandboxes
are discarded one at a time, DISCARD_PAUSE apart, so a class's end does not stall the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("sandbox.agent.warmpool")

WARM_HOSTNAME = "node1"  # the first instance of every session
REFILL_BACKOFF = 2.0
REFILL_DELAY = 0.25  # seconds from a hand-over to the start of its replacement (see above)
DISCARD_PAUSE = 0.1  # seconds between two surplus sandboxes discarded (a reservation shrunk or expired)


@dataclass
class Reservation:
    """A holder's extra pooled sandboxes per image, wanted until ``expires`` (time.monotonic)."""

    sizes: dict[str, int]
    expires: float


class Pooled(Protocol):
    """What the pool needs of a sandbox: the id runc knows it by."""

    runtime_id: str


P = TypeVar("P", bound=Pooled)


class WarmPool(Generic[P]):
    """Keeps ready sandboxes (of type ``P``) per image; the agent supplies how to build and discard one."""

    def __init__(
        self,
        sizes: dict[str, int],
        build: Callable[[str, str], Awaitable[P]],
        discard: Callable[[P], Awaitable[None]],
        room: Callable[[], int],
    ) -> None:
        self.sizes = {image: n for image, n in sizes.items() if n > 0}  # static (PLAYGROUND_WARM_POOL)
        self.reservations: dict[str, Reservation] = {}  # by holder
        self.ready: dict[str, list[P]] = {image: [] for image in self.sizes}
        self.busy: set[str] = set()  # runtime ids being built or discarded
        self._build, self._discard, self._room = build, discard, room
        self._wanted = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start filling (and keep watching for reservations, even with no static size)."""
        self._filler = asyncio.create_task(self._fill(), name="warm-pool")

    def reserve(self, holder: str, sizes: dict[str, int], ttl: float) -> None:
        """Want ``sizes`` more sandboxes per image for ``holder`` during ``ttl`` seconds, replacing
        what it reserved before; empty ``sizes`` (or only zeros) or ``ttl`` <= 0 drops its reservation."""
        kept = {image: n for image, n in sizes.items() if n > 0}
        if kept and ttl > 0:
            self.reservations[holder] = Reservation(kept, time.monotonic() + ttl)
            for image in kept:
                self.ready.setdefault(image, [])
        else:
            self.reservations.pop(holder, None)
        self._wanted.set()

    def wanted(self) -> dict[str, int]:
        """Sandboxes wanted per image: the static size plus every unexpired reservation (expired ones
        are dropped here)."""
        now = time.monotonic()
        for holder in [h for h, r in self.reservations.items() if r.expires <= now]:
            log.info("warm pool reservation of %s expired", holder)
            del self.reservations[holder]
        wanted = dict(self.sizes)
        for reservation in self.reservations.values():
            for image, n in reservation.sizes.items():
                wanted[image] = wanted.get(image, 0) + n
        return wanted

    def take(self, image: str, hostname: str) -> P | None:
        """A ready sandbox of ``image`` if one fits the request; the caller owns it from now on.

        It counts against a reservation of ``image`` if there is one (that one wants one fewer);
        otherwise its replacement starts REFILL_DELAY later (see the module's docstring)."""
        ready = self.ready.get(image)
        if not ready or hostname != WARM_HOSTNAME:
            return None
        for reservation in self.reservations.values():
            if reservation.sizes.get(image, 0) > 0:
                reservation.sizes[image] -= 1
                break
        asyncio.get_running_loop().call_later(REFILL_DELAY, self._wanted.set)
        return ready.pop(0)

    def count(self) -> int:
        """Pooled sandboxes on the host: ready, being built and being discarded."""
        return sum(len(r) for r in self.ready.values()) + len(self.busy)

    def runtime_ids(self) -> set[str]:
        return {s.runtime_id for r in self.ready.values() for s in r} | self.busy

    def wake(self) -> None:
        """Capacity was freed: fill again if the pool is short."""
        self._wanted.set()

    async def evict(self) -> bool:
        """Destroy one ready sandbox (of the fullest image) to make room; False if none is ready."""
        fullest = max(self.ready.values(), key=len, default=[])
        if not fullest:
            return False
        await self._destroy(fullest.pop())
        return True

    async def close(self) -> None:
        """Stop filling and destroy every ready sandbox."""
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
        for ready in self.ready.values():
            while ready:
                await self._destroy(ready.pop())

    async def _destroy(self, sandbox: P) -> None:
        self.busy.add(sandbox.runtime_id)
        try:
            await self._discard(sandbox)
        except Exception as exc:  # the agent's reconciliation removes what is left
            log.error("discarding pooled sandbox %s failed: %s", sandbox.runtime_id, exc)
        finally:
            self.busy.discard(sandbox.runtime_id)

    async def _fill(self) -> None:
        """Forever: start what is wanted while there is room, discard the surplus, then sleep until
        woken or until the next reservation expires."""
        while True:
            self._wanted.clear()
            for image in self.wanted():
                while len(self.ready.setdefault(image, [])) < self.wanted().get(image, 0) and self._room() > 0:
                    if not await self._add(image):
                        await asyncio.sleep(REFILL_BACKOFF)
                        self._wanted.set()  # try again
                        break
            await self._discard_surplus()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._until_expiry())

    async def _discard_surplus(self) -> None:
        """Destroy ready sandboxes beyond what is wanted, one at a time, DISCARD_PAUSE apart."""
        for image, ready in self.ready.items():
            while len(ready) > self.wanted().get(image, 0):
                await self._destroy(ready.pop())
                log.info("discarded a surplus warm %s sandbox (%d left ready)", image, len(ready))
                await asyncio.sleep(DISCARD_PAUSE)

    def _until_expiry(self) -> float | None:
        """Seconds until the next reservation expires (None: no reservation)."""
        if not self.reservations:
            return None
        return max(0.0, min(r.expires for r in self.reservations.values()) - time.monotonic()) + 0.01

    async def _add(self, image: str) -> bool:
        runtime_id = "w" + secrets.token_hex(12)  # never a session's id (those are 32 hex digits)
        self.busy.add(runtime_id)
        try:
            sandbox = await self._build(image, runtime_id)
        except Exception as exc:
            log.error("could not start a warm %s sandbox (retrying in %.0f s): %s", image, REFILL_BACKOFF, exc)
            return False
        finally:
            self.busy.discard(runtime_id)
        self.ready.setdefault(image, []).append(sandbox)
        return True
