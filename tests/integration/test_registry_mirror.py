"""The registry mirror with real parts: a stack whose mirror storage holds a tiny image the test
seeded (through a temporary writable docker-registry on the same root, before the stack starts),
whose store is a pull-through cache of a second docker-registry on loopback (the "upstream", whose
access log counts what it serves), and docker sandboxes whose engines pull through the front.

- With the upstream gone (its port refusing), ``docker pull`` and ``docker run`` of the seeded
  image work inside a docker sandbox: the cache serves what it holds.
- Five docker sandboxes pulling an image only the upstream has, at once, all succeed, and the
  upstream serves each blob as often as one pull alone costs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from playground.registry.distribution import writable_registry
from playground.registry.paths import mirror_root
from tests.dockerkit import agent, build_docker_image, log, run, start_docker_sandbox
from tests.imagekit import CACHE
from tests.mirrorkit import Registry, blob_gets, push, sha256, start_registry, tiny_image
from tests.stack import Stack, free_port

pytestmark = [pytest.mark.root, pytest.mark.alongside]

SEEDED = tiny_image("seeded-for-the-seminar")
UPSTREAM_ONLY = tiny_image("fetched-from-the-upstream")
PULLERS = 5


@dataclass
class Mirror:
    """The stack, and its store's upstream (stopped and started again by the tests)."""

    stack: Stack
    upstream: Registry
    upstream_root: Path
    work: Path

    @contextlib.contextmanager
    def upstream_refusing(self) -> Iterator[None]:
        """The upstream stopped (its port refuses) for the block, then started again on the same port."""
        self.upstream.stop()
        try:
            yield
        finally:
            port = int(self.upstream.address.rsplit(":", 1)[1])
            self.upstream = start_registry(self.upstream_root, self.work, port)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    work = tmp_path_factory.mktemp("mirror")
    upstream = start_registry(work / "upstream", work, free_port())
    try:
        push(upstream.address, "library/countme", "latest", UPSTREAM_ONLY)
        stack = Stack.create(
            PLAYGROUND_REGISTRY_UPSTREAM=f"http://{upstream.address}",
            PLAYGROUND_IMAGE_CACHE=str(CACHE),
            PLAYGROUND_HOST_MAX_SANDBOXES="20",
            PLAYGROUND_REAPER_INTERVAL="3600",  # sandboxes made through the agent, without sessions
        )
        with writable_registry(mirror_root(stack.data_dir)) as seeding:
            push(seeding, "library/tinybox", "latest", SEEDED)
        try:
            stack.start()
            build_docker_image(stack)
            mirror = Mirror(stack, upstream, work / "upstream", work)
            yield mirror
            upstream = mirror.upstream
        finally:
            stack.stop()
    finally:
        upstream.stop()


async def test_a_seeded_image_is_pulled_and_run_in_a_docker_sandbox_while_the_upstream_refuses(mirror: Mirror) -> None:
    sandbox = await start_docker_sandbox(mirror.stack)
    try:
        with mirror.upstream_refusing():
            out = await run(mirror.stack, sandbox, "docker pull tinybox && docker run --rm tinybox cat /hello.txt", 120)
        assert out["code"] == 0, out["output"] + await log(mirror.stack, sandbox)
        assert "seeded-for-the-seminar" in out["output"]
    finally:
        await agent(mirror.stack).request("destroy", id=sandbox)


async def test_five_sandboxes_pulling_one_image_at_once_cost_the_upstream_what_one_pull_costs(mirror: Mirror) -> None:
    stack = mirror.stack
    sandboxes = await asyncio.gather(*(start_docker_sandbox(stack) for _ in range(PULLERS)))
    try:
        outs = await asyncio.gather(
            *(run(stack, s, "docker pull countme && docker run --rm countme cat /hello.txt", 120) for s in sandboxes)
        )
        for sandbox, out in zip(sandboxes, outs, strict=True):
            assert out["code"] == 0, out["output"] + await log(stack, sandbox)
            assert "fetched-from-the-upstream" in out["output"]
    finally:
        await asyncio.gather(*(agent(stack).request("destroy", id=s) for s in sandboxes))
    fetched = blob_gets(mirror.upstream.log_path)
    layer, config = sha256(UPSTREAM_ONLY.layer), sha256(UPSTREAM_ONLY.config)
    # Distribution 2.8 alone fetches a blob it lacks twice for one request (to answer it and to keep
    # it), and once more for every other request arriving meanwhile: 1 + PULLERS. The front's leader
    # keeps it with one fetch (playground.registry.filling) and everyone is served from disk.
    assert (fetched[layer], fetched[config]) == (1, 1), fetched
