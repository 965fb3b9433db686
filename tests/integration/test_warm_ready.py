"""Images with a ready file (the recipe key ``ready``, as the docker image's mark that its engine
answers): the warm pool hands out only sandboxes whose init has made it, and a sandbox that never
makes it is removed after PLAYGROUND_WARM_READY_TIMEOUT, never handed out, and leaves nothing.

The images are the busybox image with another command and a ready file, made in the stack's own
store before it starts: ``late`` starts its shell at once and makes its file 4 s later, ``never`` not at all.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from sandbox.wire.client import AgentClient
from tests.imagekit import images_cli
from tests.stack import Stack, Terminal
from tests.waiting import eventually_async

READY_TIMEOUT = 6  # seconds, PLAYGROUND_WARM_READY_TIMEOUT of this stack


def derive(stack: Stack, name: str, cmd: list[str], ready: str) -> None:
    """Make image ``name`` in the stack's store: the busybox image's layers with ``cmd`` and ``ready``."""
    images = stack.data_dir / "images"
    subprocess.run(["cp", "-a", str(images / "busybox"), str(images / name)], check=True)
    meta_path = images / name / "image.json"
    meta = json.loads(meta_path.read_text())
    meta.update(name=name, cmd=cmd, ready=ready)
    meta_path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def ready_stack() -> Iterator[Stack]:
    stack = Stack.create(
        PLAYGROUND_WARM_POOL="late:1,never:1",
        PLAYGROUND_WARM_READY_TIMEOUT=str(READY_TIMEOUT),
        PLAYGROUND_HOST_MAX_SANDBOXES="4",
        PLAYGROUND_RECONCILE_INTERVAL="1",  # a reconciliation during every late sandbox's 4 s build
    )
    built = images_cli(stack, "build", "busybox")
    assert built.returncode == 0, built.stdout + built.stderr
    derive(stack, "late", ["/bin/sh", "-c", "(sleep 4; touch /tmp/ready) & exec sh"], "/tmp/ready")
    derive(stack, "never", ["/bin/sh"], "/tmp/never")
    stack.start()
    try:
        yield stack
    finally:
        stack.end_started_sessions()
        stack.stop()


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


async def late_in_pool(stack: Stack) -> None:
    """Wait (looking often) until the pool holds a late sandbox."""
    await eventually_async(
        lambda: agent(stack).request("list"),
        "a late sandbox in the warm pool",
        30,
        0.02,
        until=lambda listing: listing["warm"].get("late") == 1,
    )


async def take_late(stack: Stack, command: str = "test -e /tmp/ready && echo made || echo missing") -> str:
    """Start a session of the late image the moment the pool holds one: what ``command`` says at
    its first prompt (by default whether its ready file exists)."""
    await late_in_pool(stack)
    session = stack.start_session(image="late")
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=20)
        return await terminal.run(command)
    finally:
        await terminal.close()
        stack.end_session(session)


async def test_a_pooled_sandbox_is_handed_out_only_once_its_ready_file_exists(ready_stack: Stack) -> None:
    await take_late(ready_stack)  # the one the pool filled at the start, long ready by now
    # Its replacement joins the pool 4 s after it started (its init's sleep), not at its first
    # prompt: taken at once, it has the file.
    assert "made" in await take_late(ready_stack)


async def test_a_sandbox_being_built_for_the_pool_keeps_its_network_through_reconciliations(
    ready_stack: Stack,
) -> None:
    # Its network was taken from the network pool when its build began, and it joins the warm pool
    # only 4 s later: a reconciliation meanwhile (every second here) must not take it for a leftover
    # (its veth, netns and address removed: a pooled docker sandbox whose engine reaches nothing).
    await take_late(ready_stack)
    assert (await take_late(ready_stack, "ip -4 -o addr show eth0 | wc -l")).strip().splitlines()[-1] == "1"


async def test_a_sandbox_that_never_gets_ready_is_removed_and_never_handed_out(ready_stack: Stack) -> None:
    log_line = f"did not make its ready file /tmp/never within {READY_TIMEOUT} s (PLAYGROUND_WARM_READY_TIMEOUT)"
    await eventually_async(
        lambda: _log_count(ready_stack, log_line), "two never sandboxes given up", 40, until=lambda n: n >= 2
    )
    listing = await agent(ready_stack).request("list")
    assert listing["warm"].get("never", 0) == 0
    # At most the one being tried now is on the host besides the late pooled one: none was left behind.
    assert len(ready_stack.host_state()["sandbox_dirs"]) <= 2, ready_stack.host_state()["sandbox_dirs"]


async def _log_count(stack: Stack, line: str) -> int:
    return stack.log_path.read_text(errors="replace").count(line)
