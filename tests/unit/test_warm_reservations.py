"""The warm pool's reservations (sandbox.agent.warmpool, sandbox.agent.reserving): extra pooled
sandboxes a holder wants for a while, on top of the static sizes, within the host's room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from sandbox.agent import warmpool
from sandbox.agent.capacity import Capacity
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.reserving import WarmReservations
from sandbox.images.store import ImageError, ImageStore
from sandbox.runtime.bundle import DOCKER_PROFILE
from sandbox.wire.protocol import AgentError
from tests.waiting import eventually_async


@dataclass
class Host:
    """Builds and discards fake pooled sandboxes, counting both, within ``limit`` slots."""

    limit: int = 100
    built: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    pool: warmpool.WarmPool[Sandbox] | None = None

    async def build(self, image: str, runtime_id: str) -> Sandbox:
        self.built.append(image)
        return Sandbox(runtime_id, "node1", image, 1.0)

    async def discard(self, sandbox: Sandbox) -> None:
        self.discarded.append(sandbox.runtime_id)

    def room(self) -> int:
        assert self.pool is not None
        return self.limit - self.pool.count()

    def make_pool(self, sizes: dict[str, int]) -> warmpool.WarmPool[Sandbox]:
        self.pool = warmpool.WarmPool(sizes, self.build, self.discard, self.room)
        return self.pool


@pytest.fixture
async def host(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Host]:
    """A host whose pool the test makes (``host.make_pool``) and starts; closed after the test."""
    monkeypatch.setattr(warmpool, "DISCARD_PAUSE", 0.01)
    monkeypatch.setattr(warmpool, "REFILL_DELAY", 0.01)
    made = Host()
    yield made
    if made.pool is not None:
        await made.pool.close()


def counts(pool: warmpool.WarmPool[Sandbox]) -> dict[str, int]:
    return {image: len(ready) for image, ready in pool.ready.items() if ready}


async def holds(pool: warmpool.WarmPool[Sandbox], expected: dict[str, int], timeout: float = 5) -> None:
    await eventually_async(lambda: counts(pool), f"the pool holds {expected}", timeout, until=lambda c: c == expected)


async def test_reservations_add_up_with_the_static_sizes_per_image(host: Host) -> None:
    pool = host.make_pool({"busybox": 1})
    pool.start()
    pool.reserve("workshops", {"busybox": 2, "alpine": 1}, 60)
    pool.reserve("other", {"busybox": 1}, 60)
    assert pool.wanted() == {"busybox": 4, "alpine": 1}
    await holds(pool, {"busybox": 4, "alpine": 1})


async def test_an_expired_reservation_is_dropped_and_its_surplus_discarded(host: Host) -> None:
    pool = host.make_pool({"busybox": 1})
    pool.start()
    pool.reserve("workshops", {"busybox": 2}, 0.5)
    await holds(pool, {"busybox": 3})
    await holds(pool, {"busybox": 1})  # no renewal: the filler wakes at the expiry by itself
    assert pool.wanted() == {"busybox": 1} and pool.reservations == {}
    assert len(host.discarded) == 2


async def test_a_reservation_sent_again_replaces_it_and_a_shrink_discards_only_ready_ones(host: Host) -> None:
    pool = host.make_pool({})
    pool.start()
    pool.reserve("workshops", {"busybox": 3}, 60)
    await holds(pool, {"busybox": 3})
    handed_over = pool.take("busybox", "node1")
    assert handed_over is not None
    pool.reserve("workshops", {"busybox": 1}, 60)
    await holds(pool, {"busybox": 1})
    assert len(host.discarded) == 1 and handed_over.runtime_id not in host.discarded


@pytest.mark.parametrize(("sizes", "ttl"), [({}, 60), ({"busybox": 2}, 0), ({"busybox": 0}, 60)])
async def test_no_sizes_or_a_ttl_of_zero_drops_the_holders_reservation(
    host: Host, sizes: dict[str, int], ttl: int
) -> None:
    pool = host.make_pool({})
    pool.start()
    pool.reserve("workshops", {"busybox": 2}, 60)
    await holds(pool, {"busybox": 2})
    pool.reserve("workshops", sizes, ttl)
    await holds(pool, {})
    assert pool.reservations == {}


async def test_a_sandbox_handed_over_counts_against_the_reservation_so_it_is_not_refilled(host: Host) -> None:
    pool = host.make_pool({})
    pool.start()
    pool.reserve("workshops", {"busybox": 2}, 60)
    await holds(pool, {"busybox": 2})
    assert pool.take("busybox", "node1") is not None
    assert pool.wanted() == {"busybox": 1}
    await asyncio.sleep(0.2)  # many refill delays
    assert counts(pool) == {"busybox": 1} and len(host.built) == 2


async def test_the_pool_fills_only_as_far_as_the_hosts_room_allows(host: Host) -> None:
    host.limit = 3
    pool = host.make_pool({"busybox": 1})
    pool.start()
    pool.reserve("workshops", {"busybox": 5}, 60)
    await holds(pool, {"busybox": 3})
    await asyncio.sleep(0.2)
    assert len(host.built) == 3 and pool.wanted() == {"busybox": 6}


class Store:
    """An image store that has ``busybox`` and ``docker`` (of the docker profile)."""

    def get(self, name: str) -> Any:
        if name not in ("busybox", "docker"):
            raise ImageError(f"there is no image named {name!r}; available: busybox, docker")
        return type("Image", (), {"name": name, "profile": DOCKER_PROFILE if name == "docker" else "default"})()


def reservations(docker_profile: bool = True) -> WarmReservations:
    """The ``reserve_warm`` handler over a pool that is never started (nothing is built)."""
    host = Host(limit=10)
    capacity = Capacity(10, Registry(), {}, host.build, host.discard)
    return WarmReservations(capacity, cast(ImageStore, Store()), docker_profile)


async def test_a_reservation_answers_the_pools_state() -> None:
    handler = reservations()
    reply = await handler.reserve({"op": "reserve_warm", "holder": "workshops", "sizes": {"busybox": 3}, "ttl": 90})
    assert reply == {"ready": {}, "wanted": {"busybox": 3}, "limit": 10, "room": 10}
    assert (await handler.status({"op": "warm"}))["wanted"] == {"busybox": 3}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"sizes": {"busybox": 1}, "ttl": 90}, "holder=None is invalid"),
        ({"holder": "Work shops", "sizes": {"busybox": 1}, "ttl": 90}, "holder='Work shops' is invalid"),
        ({"holder": "workshops", "sizes": [["busybox", 1]], "ttl": 90}, "sizes must be an object"),
        ({"holder": "workshops", "sizes": {"Busy box": 1}, "ttl": 90}, "'Busy box' is not an image name"),
        ({"holder": "workshops", "sizes": {"busybox": -1}, "ttl": 90}, "the count of busybox is -1"),
        ({"holder": "workshops", "sizes": {"busybox": True}, "ttl": 90}, "the count of busybox is True"),
        ({"holder": "workshops", "sizes": {"busybox": 600, "docker": 401}, "ttl": 90}, "1001 pooled sandboxes"),
        ({"holder": "workshops", "sizes": {"busybox": 1}, "ttl": 3601}, "ttl=3601 is invalid"),
        ({"holder": "workshops", "sizes": {"busybox": 1}, "ttl": "90"}, "ttl='90' is invalid"),
    ],
)
async def test_a_bad_reservation_is_refused_naming_the_field(fields: dict[str, object], says: str) -> None:
    handler = reservations()
    with pytest.raises(AgentError) as refused:
        await handler.reserve({"op": "reserve_warm", **fields})
    assert refused.value.code == "bad_request" and says in refused.value.message
    assert handler.capacity.warm.reservations == {}


@pytest.mark.parametrize(
    ("image", "docker_profile", "code", "says"),
    [
        ("alpine", True, "unknown_image", "cannot reserve sandboxes of alpine: there is no image named 'alpine'"),
        ("docker", False, "bad_request", "PLAYGROUND_DOCKER_PROFILE=false"),
    ],
)
async def test_a_reservation_of_an_image_this_host_cannot_start_is_refused(
    image: str, docker_profile: bool, code: str, says: str
) -> None:
    handler = reservations(docker_profile)
    request = {"op": "reserve_warm", "holder": "workshops", "sizes": {"busybox": 1, image: 1}, "ttl": 90}
    with pytest.raises(AgentError) as refused:
        await handler.reserve(request)
    assert refused.value.code == code and says in refused.value.message
    assert handler.capacity.warm.reservations == {}
