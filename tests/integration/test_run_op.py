"""The agent's ``run`` op against real sandboxes: scripts run as root inside the visitor's sandbox,
with the image's environment, and are cut off at their timeout and output limit with nothing left
behind, inside the sandbox or on the host."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.host import cgroups
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError
from tests.stack import Stack, Terminal
from tests.visitors import database
from tests.waiting import eventually_async


@dataclass
class Sandbox:
    session: dict[str, Any]
    sandbox_id: str
    terminal: Terminal


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[Sandbox]:
    """A running session's sandbox with its visitor's shell open."""
    session = stack.start_session()
    with database(stack) as db:
        (instance_id,) = db.execute(
            "SELECT id FROM sandboxes_instance WHERE session_id = ?", (session["id"].replace("-", ""),)
        ).fetchone()
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=30)
        yield Sandbox(session, instance_id.replace("-", ""), terminal)
    finally:
        await terminal.close()
        stack.end_session(session)


async def run(stack: Stack, sandbox: Sandbox, script: str, timeout: float = 10, limit: int = 65536) -> dict[str, Any]:
    return await agent(stack).request("run", sandbox=sandbox.sandbox_id, script=script, timeout=timeout, limit=limit)


def run_cgroups(stack: Stack, sandbox: Sandbox) -> list[str]:
    """The sub-cgroups of runs under the sandbox's cgroup, in every hierarchy."""
    return [str(p) for d in cgroups.sandbox_dirs(stack.cgroup_parent, sandbox.sandbox_id) for p in d.glob("run-*")]


async def processes(sandbox: Sandbox) -> list[str]:
    """Command lines of the live processes in the sandbox as its visitor sees them in ``ps`` (not
    zombies: a killed process whose parent died too is the visitor's shell's to reap, as init)."""
    listing = await sandbox.terminal.run("ps -o stat,args")
    rows = [line.split(None, 1) for line in listing.splitlines()[1:] if line.strip()]
    return [args for stat, args in rows if not stat.startswith("Z")]


ALONE = ["/bin/sh -l", "{ps} /bin/sh -l"]  # the visitor's shell and the listing itself


def _empty(found: list[str]) -> bool:
    return not found


async def test_a_script_runs_as_root_inside_the_sandbox_with_the_image_environment(
    stack: Stack, sandbox: Sandbox
) -> None:
    reply = await run(stack, sandbox, 'id -u; echo "path=$PATH"; hostname; echo oops >&2; exit 3')
    lines = reply["output"].splitlines()
    assert reply["code"] == 3
    assert not reply["timed_out"]
    assert not reply["truncated"]
    assert lines[0] == "0"
    assert lines[1].startswith("path=/")
    assert "/bin" in lines[1]
    assert lines[2] == "node1"
    assert lines[3] == "oops"
    assert 0 < reply["seconds"] < 5


async def test_a_script_sees_the_sandbox_and_not_the_host(stack: Stack, sandbox: Sandbox) -> None:
    await sandbox.terminal.type("touch /root/made-by-visitor\n")
    reply = await run(stack, sandbox, "ls /root; ps -o comm; cat /proc/1/comm")
    assert reply["code"] == 0
    assert "made-by-visitor" in reply["output"]
    assert not any(word in reply["output"] for word in ("python", "daphne", "redis", "runc", "celery"))
    assert reply["output"].splitlines()[-1] == "sh"  # pid 1 is the visitor's shell


async def test_a_script_that_loops_forever_is_killed_at_its_timeout(stack: Stack, sandbox: Sandbox) -> None:
    started = time.monotonic()
    reply = await run(stack, sandbox, "echo spinning; while :; do :; done", timeout=2)
    assert reply["timed_out"]
    assert reply["code"] is None
    assert reply["output"] == "spinning\n"
    assert 1.9 < time.monotonic() - started < 10
    assert await processes(sandbox) == ALONE
    assert run_cgroups(stack, sandbox) == []


async def test_a_forked_tree_of_sleeps_is_killed_whole_and_the_visitors_shell_lives_on(
    stack: Stack, sandbox: Sandbox
) -> None:
    script = "(sleep 1001 &); (setsid sleep 1002 &); sleep 1003 & sh -c 'sleep 1004 & sleep 1005'"
    reply = await run(stack, sandbox, script, timeout=2)
    assert reply["timed_out"]
    assert await processes(sandbox) == ALONE
    assert run_cgroups(stack, sandbox) == []
    assert (await sandbox.terminal.run("echo $((6*7))")).strip() == "42"


async def test_background_processes_end_with_a_script_that_exits(stack: Stack, sandbox: Sandbox) -> None:
    reply = await run(stack, sandbox, "sleep 1006 & echo started")
    assert reply["code"] == 0
    assert reply["output"] == "started\n"
    assert not reply["timed_out"]
    assert await processes(sandbox) == ALONE


async def test_100_mb_of_output_is_cut_at_the_limit(stack: Stack, sandbox: Sandbox) -> None:
    started = time.monotonic()
    reply = await run(stack, sandbox, "head -c 100000000 /dev/zero | tr '\\0' a; echo never", limit=65536)
    assert reply["truncated"]
    assert reply["code"] is None
    assert not reply["timed_out"]
    assert reply["output"] == "a" * 65536
    assert time.monotonic() - started < 8
    assert await processes(sandbox) == ALONE


async def test_output_that_is_not_utf8_is_replaced_not_refused(stack: Stack, sandbox: Sandbox) -> None:
    reply = await run(stack, sandbox, "printf 'caf\\303\\251 \\377\\n'")
    assert reply["output"] == "café \ufffd\n"


async def test_a_third_concurrent_run_in_one_sandbox_is_refused(stack: Stack, sandbox: Sandbox) -> None:
    slow = [asyncio.create_task(run(stack, sandbox, "sleep 3", timeout=10)) for _ in range(2)]
    await asyncio.sleep(1)  # let both runs start; nothing outside shows that they have
    with pytest.raises(AgentError) as refused:
        await run(stack, sandbox, "true")
    assert refused.value.code == "busy"
    assert [r["code"] for r in await asyncio.gather(*slow)] == [0, 0]
    assert (await run(stack, sandbox, "true"))["code"] == 0


async def test_a_run_whose_client_hangs_up_is_ended_with_what_it_started(stack: Stack, sandbox: Sandbox) -> None:
    script = "sleep 1008; touch /root/after-the-hang-up"
    request = asyncio.create_task(run(stack, sandbox, script, timeout=60))

    def sleeping(listed: list[str]) -> bool:
        return any(args.startswith("sleep 1008") for args in listed)

    await eventually_async(lambda: processes(sandbox), "the script's sleep runs", 10, until=sleeping)
    request.cancel()  # the client closes its connection without waiting for the reply
    with contextlib.suppress(asyncio.CancelledError):
        await request
    await eventually_async(lambda: processes(sandbox), "only the visitor's shell is left", 10, until=ALONE.__eq__)
    # No reply says when the run's cleanup ended: its cgroups go once their processes are reaped.
    await eventually_async(lambda: run_cgroups(stack, sandbox), "the run's cgroups are removed", 10, until=_empty)
    assert "after-the-hang-up" not in await sandbox.terminal.run("ls /root")
    assert (await run(stack, sandbox, "echo next"))["output"] == "next\n"


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"script": 5}, "script"),
        ({"script": "true", "timeout": 0}, "timeout"),
        ({"script": "true", "timeout": 301}, "timeout"),
        ({"script": "true", "limit": 0}, "limit"),
        ({"script": "true", "limit": "64k"}, "limit"),
    ],
)
async def test_bad_run_requests_are_refused_with_a_reason(
    stack: Stack, sandbox: Sandbox, fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(AgentError) as refused:
        await agent(stack).request("run", sandbox=sandbox.sandbox_id, **fields)
    assert refused.value.code == "bad_request"
    assert words in refused.value.message


async def test_a_run_in_an_unknown_sandbox_is_refused(stack: Stack) -> None:
    with pytest.raises(AgentError) as refused:
        await agent(stack).request("run", sandbox="0" * 32, script="true")
    assert refused.value.code == "unknown_sandbox"
