"""Sandboxes of a group (a session's nodes) made straight through the agent, for the tests of the
private network between them and of the walls around it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from tests.dockerkit import agent, run
from tests.netprobes import ping_from, udp_echo, udp_from
from tests.stack import Stack


async def create(stack: Stack, hostname: str, group: str | None, image: str = "busybox") -> dict[str, Any]:
    """A new sandbox of ``group`` named ``hostname``: the agent's description of it."""
    fields: dict[str, Any] = {"id": secrets.token_hex(16), "hostname": hostname, "image": image}
    if group is not None:
        fields["group"] = group
    reply = await agent(stack).request("create", **fields)
    return dict(reply["sandbox"])


@contextlib.asynccontextmanager
async def group_of(
    stack: Stack, *hostnames: str, image: str = "busybox", group: str = ""
) -> AsyncIterator[list[dict[str, Any]]]:
    """Sandboxes of ``image`` named ``hostnames`` of ``group`` (by default a new one), created one
    after the other (as a session adds nodes), for the block; their descriptions. They are
    destroyed afterwards."""
    group = group or secrets.token_hex(16)
    made: list[dict[str, Any]] = []
    try:
        for name in hostnames:
            made.append(await create(stack, name, group, image))
        yield made
    finally:
        for sandbox in made:
            await agent(stack).request("destroy", id=sandbox["id"])


async def output(stack: Stack, sandbox: dict[str, Any], script: str, timeout: float = 15) -> str:
    """What ``script`` prints (stdout and stderr) run as root in ``sandbox``."""
    return str((await run(stack, sandbox["id"], script, timeout))["output"])


@contextlib.asynccontextmanager
async def serving(stack: Stack, sandbox: dict[str, Any], script: str, seconds: float = 20) -> AsyncIterator[None]:
    """The server ``script`` (one command) running in ``sandbox`` for the block, given half a second
    to start; it is killed when the block ends (or after ``seconds``)."""
    pidfile = f"/tmp/serving-{secrets.token_hex(4)}.pid"
    command = f"echo $$ > {pidfile}; exec timeout {seconds:.0f} {script}"
    task = asyncio.create_task(run(stack, sandbox["id"], command, seconds + 10))
    await asyncio.sleep(0.5)
    try:
        yield
    finally:
        await run(stack, sandbox["id"], f"kill $(cat {pidfile}); rm -f {pidfile}", 10)
        with contextlib.suppress(Exception):
            await task


def netns_of(stack: Stack, sandbox: dict[str, Any]) -> str:
    """The name of ``sandbox``'s network namespace (under /run/netns), from its record."""
    record = stack.data_dir / "agent" / "sandboxes" / sandbox["runtime_id"] / "sandbox.json"
    return str(json.loads(record.read_text())["network"]["netns"]).rsplit("/", 1)[1]


async def reaches(
    stack: Stack, source: dict[str, Any], target: dict[str, Any], via: str = "", port: int = 7946
) -> dict[str, bool]:
    """Whether ``source`` reaches ``target`` with TCP on ``port`` (busybox's nc inside, to ``via``: a
    name, or by default its address), UDP on ``port`` and an ICMP echo (from the sandbox's network
    namespace: see tests/netprobes.py)."""
    async with serving(stack, target, f"nc -ll -p {port} -e echo tcp-hello"):
        tcp = await output(stack, source, f"nc -w 2 {via or target['address']} {port} </dev/null 2>&1; true")
    with udp_echo(netns_of(stack, target), target["address"], port):
        udp = await asyncio.to_thread(udp_from, netns_of(stack, source), target["address"], port)
    icmp = await asyncio.to_thread(ping_from, netns_of(stack, source), target["address"])
    return {"tcp": "tcp-hello" in tcp, "udp": udp == "echo-ping", "icmp": icmp}


NOTHING = {"tcp": False, "udp": False, "icmp": False}
EVERYTHING = {"tcp": True, "udp": True, "icmp": True}
