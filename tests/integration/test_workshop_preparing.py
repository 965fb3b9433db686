"""Preparing a workshop's room on a real stack (docs/workshops.md, "Preparing the room"): the beat
task's reservation fills the agent's pool with the class's sandboxes, a join takes one of them
instead of creating one, and the workshop's end lets the pool shrink back. The stack's own warm
pool is off, so every pooled sandbox is the workshop's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.wire.client import AgentClient
from tests.stack import Stack
from tests.waiting import eventually_async
from tests.workshopkit import CookieClient, make_workshop

pytestmark = pytest.mark.root

CAPACITY = 3

PREPARE = "from playground.workshops.preparing import prepare_workshops; print(prepare_workshops())"
OPEN_NOW = "from django.utils import timezone; from playground.workshops.models import Workshop; "
OPEN_NOW += "Workshop.objects.update(starts_at=timezone.now())"
END_NOW = "from django.utils import timezone; from playground.workshops.models import Workshop; "
END_NOW += "Workshop.objects.update(ends_at=timezone.now())"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_WARM_POOL="0", PLAYGROUND_HOST_MAX_SANDBOXES="6") as running:
        yield running


async def pooled(stack: Stack, count: int, timeout: float = 30) -> dict[str, Any]:
    """The agent's ``warm`` reply once ``count`` busybox sandboxes are ready in its pool."""
    client = AgentClient(stack.data_dir / "run" / "agent.sock")
    return await eventually_async(
        lambda: client.request("warm"),
        f"{count} busybox sandboxes ready in the pool",
        timeout,
        until=lambda warm: warm["ready"].get("busybox", 0) == count,
    )


async def test_a_workshop_about_to_start_gets_its_sandboxes_pooled_a_join_takes_one_and_its_end_frees_them(
    stack: Stack,
) -> None:
    client = AgentClient(stack.data_dir / "run" / "agent.sock")
    _, code = make_workshop(stack, "teacher", "a long password", "Prepared class", CAPACITY, "busybox", starts_in=5)
    assert "{'busybox': 3}" in stack.manage("shell", "-c", PREPARE)
    warm = await pooled(stack, CAPACITY)
    assert warm["wanted"] == {"busybox": CAPACITY}
    assert (await client.request("list"))["sandboxes"] == []  # all pooled: no visitor yet

    stack.manage("shell", "-c", OPEN_NOW)
    CookieClient(stack.port).join(code, "Min")
    sandboxes = await eventually_async(
        lambda: client.request("list"), "the learner's sandbox", 20, until=lambda listing: listing["sandboxes"]
    )
    (learners,) = sandboxes["sandboxes"]
    assert learners["runtime_id"].startswith("w"), learners  # a pooled one: the join created none
    assert "{'busybox': 2}" in stack.manage("shell", "-c", PREPARE)
    assert (await pooled(stack, CAPACITY - 1))["wanted"] == {"busybox": CAPACITY - 1}  # not refilled

    stack.manage("shell", "-c", END_NOW)
    assert "{}" in stack.manage("shell", "-c", PREPARE)
    warm = await pooled(stack, 0)
    assert warm["wanted"] == {}
