"""The sandbox's quotas bind what its Docker engine runs (issue 15, acceptance 2).

A stack whose docker sandboxes get small quotas (DOCKER_QUOTAS); inner containers are started
without limits of their own (no ``-m``, ``--pids-limit``, ``--cpus``), so only the sandbox's
cgroup, read from the host, can be what stops them: memory (OOM-killed, the kernel naming the
sandbox's memory cgroup), processes (its pids.max), CPU (its CFS quota) and the engine's image
data (the size of the tmpfs at /var/lib/docker: the disk quota). Each time the sandbox's shell
and its engine carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox.host import cgroups
from sandbox.wire.protocol import Kind
from tests.dockerkit import agent, build_docker_image, docker_sandbox_of, log, run
from tests.imagekit import CACHE
from tests.stack import Stack
from tests.waiting import eventually_async

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.root, pytest.mark.alongside]

MEMORY = 512 * 1024**2
PIDS = 300
CPUS = 0.5
DISK = 256 * 1024**2
DOCKER_QUOTAS = f"docker:memory={MEMORY // 1024**2}M,pids={PIDS},cpus={CPUS},disk={DISK // 1024**2}M"


@pytest.fixture(scope="module")
def docker_quota_stack() -> Iterator[Stack]:
    """A stack whose docker sandboxes get DOCKER_QUOTAS, with the docker image built."""
    with Stack.running(
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_IMAGE_QUOTAS=DOCKER_QUOTAS,
        PLAYGROUND_REAPER_INTERVAL="3600",
    ) as running:
        yield build_docker_image(running)


@pytest.fixture
async def small_sandbox(docker_quota_stack: Stack) -> AsyncIterator[str]:
    """A docker sandbox with DOCKER_QUOTAS whose engine answers; its id."""
    async with docker_sandbox_of(docker_quota_stack) as sandbox_id:
        yield sandbox_id


async def cgroup_file(stack: Stack, sandbox_id: str, name: str) -> Path:
    """The host's file ``name`` (e.g. ``pids.max``) of the sandbox's own cgroup."""
    reply = await agent(stack).request("create", id=sandbox_id, hostname="node1", image="docker")  # describes it
    for directory in cgroups.sandbox_dirs(stack.cgroup_parent, str(reply["sandbox"]["runtime_id"])):
        if (directory / name).exists():
            return directory / name
    raise AssertionError(f"the sandbox {sandbox_id} has no cgroup file {name}")


async def engine_answers(stack: Stack, sandbox_id: str) -> None:
    """The sandbox's shell runs and its engine still answers and runs a container."""
    out = await run(
        stack,
        sandbox_id,
        "echo shell-ok; docker info --format '{{.ServerVersion}}' && docker run --rm busybox echo run-ok",
        60,
    )
    assert out["code"] == 0 and "shell-ok" in out["output"] and "run-ok" in out["output"], out["output"] + await log(
        stack, sandbox_id
    )


def kernel_log() -> str:
    return subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout


async def test_an_inner_memory_hog_is_oom_killed_by_the_sandboxs_limit_and_the_engine_survives(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    stack = docker_quota_stack
    limit = await cgroup_file(stack, small_sandbox, "memory.limit_in_bytes")
    assert int(limit.read_text()) == MEMORY
    dockerd_before = (await run(stack, small_sandbox, "cat /run/playground-dockerd.pid"))["output"].strip()
    out = await run(stack, small_sandbox, "docker run --rm busybox sh -c 'tail /dev/zero'; echo exit=$?", 120)
    assert "exit=137" in out["output"], out["output"]  # SIGKILL: the OOM killer
    # The kernel names the sandbox's memory cgroup as the one whose limit was hit, and the victim
    # in a container's cgroup below it (the container itself had no limit).
    sandbox_memcg = "/" + str(limit.parent.relative_to(limit.parents[2]))
    lines = [line for line in kernel_log().splitlines() if f"oom_memcg={sandbox_memcg}," in line]
    assert lines, f"no OOM kill in the kernel log for {sandbox_memcg}"
    assert f"task_memcg={sandbox_memcg}/docker/" in lines[-1] and "task=tail" in lines[-1], lines[-1]
    await engine_answers(stack, small_sandbox)
    dockerd_after = (await run(stack, small_sandbox, "cat /run/playground-dockerd.pid"))["output"].strip()
    assert dockerd_after == dockerd_before  # the same engine, not a restarted one


async def test_an_inner_fork_bomb_stops_at_the_sandboxs_pids_limit_and_the_sandbox_stays_usable(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    stack = docker_quota_stack
    pids_max = await cgroup_file(stack, small_sandbox, "pids.max")
    peak = pids_max.parent / "pids.peak"
    assert int(pids_max.read_text()) == PIDS
    assert int(peak.read_text()) < PIDS
    # Sleepers forked until a fork fails; the shell then exits, and with it (PID 1) the container.
    bomb = "docker run --rm busybox sh -c 'while :; do sleep 5 & done' 2>&1 | tail -1; echo done"
    out = await run(stack, small_sandbox, bomb, 120)
    assert "can't fork" in out["output"], out["output"]
    assert int(peak.read_text()) == PIDS  # it was the sandbox's limit that stopped it
    await engine_answers(stack, small_sandbox)


async def test_two_inner_cpu_burners_are_held_to_the_sandboxs_cpu_quota(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    stack = docker_quota_stack
    usage = await cgroup_file(stack, small_sandbox, "cpuacct.usage")  # nanoseconds, the whole sandbox
    burn = "docker run -d --name burn{n} busybox sh -c 'while :; do :; done' >/dev/null"
    out = await run(stack, small_sandbox, f"{burn.format(n=1)} && {burn.format(n=2)} && echo burning", 60)
    assert "burning" in out["output"], out["output"]
    try:
        await asyncio.sleep(1)  # both running
        start_ns, start = int(usage.read_text()), time.monotonic()
        await asyncio.sleep(4)
        cpus = (int(usage.read_text()) - start_ns) / 1e9 / (time.monotonic() - start)
    finally:
        await run(stack, small_sandbox, "docker rm -f burn1 burn2", 60)
    # Two busy loops would take 2 CPUs unbound; a loaded test machine may give them less than the quota.
    assert 0.15 < cpus <= CPUS * 1.15, f"the sandbox used {cpus:.2f} CPUs, its quota is {CPUS}"
    await engine_answers(stack, small_sandbox)


async def test_the_shell_weighs_more_than_its_engine_and_its_containers_and_sandboxes_less_than_the_host(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    stack = docker_quota_stack
    # The parent of every sandbox: PLAYGROUND_SANDBOX_CPU_WEIGHT's default, 10, is cgroup v1's 102 shares.
    hierarchy, v2 = cgroups.controller_mounts()["cpu"]
    knob = hierarchy / stack.cgroup_parent / ("cpu.weight" if v2 else "cpu.shares")
    assert knob.read_text().strip() == ("10" if v2 else "102")
    # Inside: the engine and a container it runs at niceness 10, the visitor's shell at 0 (field 19 of stat).
    script = (
        "(set -- $(cat /proc/$$/stat); echo shell=${19}); "
        "(set -- $(cat /proc/$(cat /run/playground-dockerd.pid)/stat); echo engine=${19}); "
        "docker run --rm busybox sh -c 'set -- $(cat /proc/1/stat); echo container=${19}'"
    )
    out = await run(stack, small_sandbox, script, 60)
    assert all(f in out["output"] for f in ("shell=0", "engine=10", "container=10")), out["output"]


async def test_inner_image_data_stops_at_the_storage_budget_with_dockers_own_error(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    stack = docker_quota_stack
    # A tar of one file (sparse in the sandbox's layer, so only /var/lib/docker fills) imported as an image.
    image = "mkdir -p /root/i && cd /root/i && truncate -s {size} blob && tar -cf - blob | docker import - {tag} 2>&1"
    out = await run(
        stack,
        small_sandbox,
        "df -B1 --output=size /var/lib/docker | tail -1; " + image.format(size="64M", tag="fits:1"),
        120,
    )
    assert int(out["output"].split()[0]) == DISK, out["output"]  # the budget is the disk quota
    assert out["code"] == 0, out["output"]  # within the budget: imported
    out = await run(stack, small_sandbox, image.format(size=f"{DISK // 1024**2 + 64}M", tag="big:1"), 120)
    assert out["code"] != 0 and "no space left on device" in out["output"], out["output"]
    out = await run(stack, small_sandbox, "docker system df && docker images --format '{{.Repository}}'", 60)
    assert out["code"] == 0 and "fits" in out["output"] and "big" not in out["output"], out["output"]
    await engine_answers(stack, small_sandbox)


def cgroups_of(pid: str) -> str:
    """What a process is and its parent, for a failure's message."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().split()
        return f"{fields[1]} ppid {fields[3]} {Path(f'/proc/{pid}/syscall').read_text().split()[0]}"
    return "gone"


async def test_an_attached_shell_runs_in_its_own_cpu_group_and_what_works_from_it_goes_back_to_the_sandboxs(
    docker_quota_stack: Stack, small_sandbox: str
) -> None:
    hierarchy = cgroups.separate_cpu_hierarchy()
    if hierarchy is None or cgroups.accounting_hierarchy() is None:
        pytest.skip("cpu and cpuacct have no v1 hierarchies of their own on this host: shells stay in their sandbox's")
    assert (
        hierarchy / cgroups.terminals_parent(docker_quota_stack.cgroup_parent) / "cpu.shares"
    ).read_text().strip() == "1024"  # the default weight, 100
    stack = docker_quota_stack
    usage = await cgroup_file(stack, small_sandbox, "cpuacct.usage")  # nanoseconds, the sandbox's own cgroup
    own = hierarchy / stack.cgroup_parent / usage.parent.name
    terminals = hierarchy / cgroups.terminals_parent(stack.cgroup_parent) / usage.parent.name
    stream = await agent(stack).attach(small_sandbox, wait=30)  # a viewer: the shell moves once at its prompt
    try:
        await eventually_async(lambda: (terminals / "cgroup.procs").exists(), "the terminals' cgroup made", 10)
        await eventually_async(lambda: (terminals / "cgroup.procs").read_text().split(), "the shell moved", 10)
        (shell,) = (terminals / "cgroup.procs").read_text().split()
        assert Path(f"/proc/{shell}/comm").read_text().strip() == "bash"
        assert int((terminals / "cpu.cfs_quota_us").read_text()) == int(CPUS * 100_000)
        engine = set()
        for pid in (own / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                engine.add(Path(f"/proc/{pid}/comm").read_text().strip())
        assert "dockerd" in engine
        # Two busy loops typed in the shell: beyond the terminals' CPU budget, they go back to the
        # sandbox's own cgroup (its weight and quota); the shell, at its prompt, returns alone.
        await stream.send(Kind.DATA, b"for i in 1 2; do (while :; do :; done) & done\n")

        def loops() -> list[str]:
            """The shell's subshells in the sandbox's own cpu cgroup (the engine is its child too)."""
            children = []
            for pid in (own / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # a process that ended meanwhile
                    if Path(f"/proc/{pid}/stat").read_text().split()[1:4:2] == ["(bash)", shell]:
                        children.append(pid)
            return children

        await eventually_async(
            lambda: len(loops()) == 2,
            "both loops back in the sandbox's cgroup",
            10,
            explain=lambda: {
                name: {pid: cgroups_of(pid) for pid in (where / "cgroup.procs").read_text().split()}
                for name, where in (("own", own), ("terminals", terminals))
            },
        )
        await eventually_async(
            lambda: (terminals / "cgroup.procs").read_text().split() == [shell], "the shell alone returned", 10
        )
        throttled = int(dict(line.split() for line in (own / "cpu.stat").read_text().splitlines())["nr_throttled"])
        start_ns, start = int(usage.read_text()), time.monotonic()
        await asyncio.sleep(4)
        cpus = (int(usage.read_text()) - start_ns) / 1e9 / (time.monotonic() - start)
        assert 0.15 < cpus <= CPUS * 1.15, f"the sandbox used {cpus:.2f} CPUs, its quota is {CPUS}"
        # The quota bites: the loops want 2 CPUs and get 0.5. On a host this busy (a second test run
        # beside this one), they may get less than the quota for a while: wait for a throttled period.
        await eventually_async(
            lambda: (
                int(dict(line.split() for line in (own / "cpu.stat").read_text().splitlines())["nr_throttled"])
                > throttled
            ),
            "a period where the sandbox was throttled at its quota",
            30,
        )
        assert (terminals / "cgroup.procs").read_text().split() == [shell]
    finally:
        await stream.send(Kind.DATA, b"kill %1 %2\n")
        await stream.close()
    await engine_answers(stack, small_sandbox)
