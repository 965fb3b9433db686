"""Docker test kit: sandboxes of the ``docker`` image (its docker profile) with an engine that answers,
driven through the agent's ``run`` op as a lab check would.

``docker_image`` is the image test stack with the ``docker`` image built (seconds when var/cache
holds its tree); ``docker_sandbox`` a running sandbox of it whose engine answers. ``run`` runs a
shell script inside a sandbox as its root and returns the agent's reply (``code``, ``output``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.wire.client import AgentClient
from tests.imagekit import images_cli
from tests.stack import Stack

ENGINE_WAIT = 60.0  # seconds for dockerd to answer in a loaded test machine


def agent(stack: Stack) -> AgentClient:
    """A client of the stack's agent."""
    return AgentClient(stack.data_dir / "run" / "agent.sock")


def build_docker_image(stack: Stack) -> Stack:
    """``stack`` with the ``docker`` image built (kept if it is there already)."""
    result = images_cli(stack, "build", "docker", "--if-missing")
    assert result.returncode == 0, result.stdout + result.stderr
    return stack


@pytest.fixture(scope="session")
def docker_image(images_stack: Stack) -> Stack:
    """``images_stack`` with the ``docker`` image."""
    return build_docker_image(images_stack)


async def start_docker_sandbox(stack: Stack) -> str:
    """A new sandbox of the docker image in ``stack`` whose engine answers; its id (destroy it)."""
    sandbox_id = secrets.token_hex(16)
    await agent(stack).request("create", id=sandbox_id, hostname="node1", image="docker")
    try:
        ready = await run(
            stack, sandbox_id, "timeout 55 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'", ENGINE_WAIT
        )
        assert ready["code"] == 0, ready["output"] + await log(stack, sandbox_id)
    except BaseException:
        await agent(stack).request("destroy", id=sandbox_id)
        raise
    return sandbox_id


@contextlib.asynccontextmanager
async def docker_sandbox_of(stack: Stack) -> AsyncIterator[str]:
    """A running sandbox of the docker image in ``stack`` whose engine answers, for the block; its id."""
    sandbox_id = await start_docker_sandbox(stack)
    try:
        yield sandbox_id
    finally:
        await agent(stack).request("destroy", id=sandbox_id)


@pytest.fixture
async def docker_sandbox(docker_image: Stack) -> AsyncIterator[str]:
    """A running sandbox of the docker image whose engine answers; its id."""
    async with docker_sandbox_of(docker_image) as sandbox_id:
        yield sandbox_id


async def run(stack: Stack, sandbox_id: str, script: str, timeout: float = 60) -> dict[str, Any]:
    """Run ``script`` (sh) inside the sandbox as its root: the reply's ``code`` and ``output``."""
    return await agent(stack).request("run", sandbox=sandbox_id, script=script, timeout=timeout, limit=65536)


async def log(stack: Stack, sandbox_id: str) -> str:
    """The end of the sandbox's dockerd log, for assertion messages."""
    return str((await run(stack, sandbox_id, "tail -30 /var/log/dockerd.log", 10))["output"])
