"""Noisy neighbours: one sandbox's keystroke echo latency, idle and while another sandbox runs a
fork bomb, a memory bomb, a disk fill and a CPU burn at once: in its own shell, or (a sandbox of
the ``docker`` image) in an inner container started without limits of its own, so that only the
sandbox's quotas bind it."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import websockets

from sandbox.host import cgroups
from sandbox.wire.client import AgentClient
from tests.stack import Stack, Terminal

ABUSE = (
    "(while :; do :; done) & (while :; do :; done) & "  # CPU burn, two spinners
    "(while :; do head -c 2000000000 /dev/zero | tail; done) 2>/dev/null & "  # memory bomb, OOM-killed in a loop
    "(dd if=/dev/zero of=/root/fill bs=1M 2>/dev/null; sleep 999) & "  # disk fill up to the quota
    # Then a fork bomb, up to the pids limit, whose every process forks for ever: the classic one
    # (each process forks two and exits) can die out at the limit, where forks fail.
    "sleep 3; (bomb() { while :; do bomb & done; }; bomb) 2>/dev/null & "
    "true"
)
DOCKER_ABUSE = f"docker run -d --name noisy busybox sh -c '{ABUSE}; wait' >/dev/null"
ENGINE_WAIT = 90.0  # seconds for a docker sandbox's engine to answer on a loaded machine


def cgroup_reading(parent: str) -> dict[str, float]:
    """Processes, CPU seconds and memory-limit hits of every sandbox under ``parent`` (v1 or v2)."""
    root = Path("/sys/fs/cgroup")
    if (root / "pids" / parent).is_dir():  # v1 (or hybrid)
        return {
            "pids": float((root / "pids" / parent / "pids.current").read_text()),
            "cpu_s": int((root / "cpuacct" / parent / "cpuacct.usage").read_text()) / 1e9,
            # v1 counts an OOM kill in the killed process's cgroup only (the parent has no limit of its
            # own): add up the sandboxes' and those of their inner containers.
            "oom_kills": sum(
                field_value(p.read_text(), "oom_kill")
                for p in (root / "memory" / parent).glob("*/**/memory.oom_control")
            ),
        }
    stat = dict(line.split() for line in (root / parent / "cpu.stat").read_text().splitlines())
    return {
        "pids": float((root / parent / "pids.current").read_text()),
        "cpu_s": int(stat["usage_usec"]) / 1e6,
        "oom_kills": field_value((root / parent / "memory.events").read_text(), "oom_kill"),
    }


def field_value(text: str, name: str) -> float:
    """The value of ``name`` in a cgroup file of ``name value`` lines, such as memory.stat (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return float(value)
    return 0.0


ABUSE_SETTLE_TIMEOUT = 60.0
# The shortest window the abuser's CPU use is averaged over: the kernel enforces a CPU quota per
# 100 ms period, so over a window of one period or less (the loaded echo test alone lasts about
# that) the reading can be anywhere up to both spinners' full speed.
CPU_WINDOW = 2.0


async def echo_latencies(terminal: Terminal, count: int) -> list[float]:
    """Type one character at a time; each sample is the time until its echo arrives."""
    samples = []
    for _ in range(count):
        before = len(terminal.output)
        started = time.perf_counter()
        await terminal.type("x")
        while len(terminal.output) == before:
            await terminal.receive_one(10)
        samples.append(time.perf_counter() - started)
    await terminal.type("\x15")  # Ctrl-U: clear the line
    return samples


async def discard_output(terminal: Terminal) -> None:
    """Read ``terminal`` until cancelled or closed, keeping nothing."""
    try:
        while True:
            await terminal.ws.recv()
    except websockets.ConnectionClosed:
        pass


async def runtime_ids(stack: Stack) -> set[str]:
    """The runtime ids of the stack's sandboxes."""
    listing = await AgentClient(stack.data_dir / "run" / "agent.sock").request("list")
    return {str(sandbox["runtime_id"]) for sandbox in listing["sandboxes"]}


def pids_cgroup(stack: Stack, runtime_id: str) -> Path:
    """The sandbox's cgroup directory of the pids controller (v1 or v2)."""
    for directory in cgroups.sandbox_dirs(stack.cgroup_parent, runtime_id):
        if (directory / "pids.max").exists():
            return directory
    raise RuntimeError(f"sandbox {runtime_id} has no pids cgroup under {stack.cgroup_parent}")


def processes_in(directory: Path) -> int:
    """Processes in a pids cgroup, its children included; 0 once it is gone."""
    try:
        return int((directory / "pids.current").read_text())
    except OSError:
        return 0


async def open_abuser(stack: Stack, image: str) -> tuple[dict[str, object], Terminal, str]:
    """A session of ``image`` at its prompt (its engine answering, for ``docker``): the session, its
    terminal, and the abuse to type there."""
    session = stack.start_session(image=image)
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", 20)
    if image != "docker":
        return session, terminal, ABUSE
    said = await terminal.run("docker info >/dev/null && echo engine-answered", ENGINE_WAIT)
    if "engine-answered" not in said:
        raise RuntimeError(f"the abuser's Docker engine did not answer; docker info printed {said!r}")
    return session, terminal, DOCKER_ABUSE


async def measure(stack: Stack, count: int, abuser_image: str = "busybox") -> dict[str, float]:
    """The echo latency of a busybox sandbox over ``count`` keystrokes, idle and while a sandbox of
    ``abuser_image`` abuses every quota (``docker``: inside an inner container); what the abuse
    reached, and how long destroying it took."""
    victim_session = stack.start_session(image="busybox")
    victim = await Terminal.open(stack.terminal_url(victim_session))
    await victim.expect("# ", 20)
    before_abuser = await runtime_ids(stack)
    abuser_session, abuser, abuse = await open_abuser(stack, abuser_image)
    (abuser_id,) = await runtime_ids(stack) - before_abuser
    abuser_pids = pids_cgroup(stack, abuser_id)
    limit = int((abuser_pids / "pids.max").read_text())
    # Read the abuser's terminal as its browser would: unread output now blocks its writers.
    watching = asyncio.create_task(discard_output(abuser))
    try:
        idle = await echo_latencies(victim, count)
        start = cgroup_reading(stack.cgroup_parent)
        await abuser.type(abuse + "\n")
        # Let every abuse reach its limit: the fork bomb its pids, the memory bomb the OOM killer.
        settling, full, oom = time.monotonic(), False, False
        while time.monotonic() < settling + ABUSE_SETTLE_TIMEOUT and not (full and oom):
            await asyncio.sleep(0.5)
            full = full or processes_in(abuser_pids) >= 0.95 * limit
            oom = oom or cgroup_reading(stack.cgroup_parent)["oom_kills"] > start["oom_kills"]
        settle_s = time.monotonic() - settling
        before = cgroup_reading(stack.cgroup_parent)
        window = time.perf_counter()
        loaded = await echo_latencies(victim, count)
        await asyncio.sleep(max(0.0, CPU_WINDOW - (time.perf_counter() - window)))
        window = time.perf_counter() - window
        after = cgroup_reading(stack.cgroup_parent)
        abuser_left = processes_in(abuser_pids)
        host = time.perf_counter()
        await asyncio.to_thread(stack.request, "GET", "/api/schema/")
        host_ms = (time.perf_counter() - host) * 1000
    finally:
        watching.cancel()
        await victim.close()
        await abuser.close()
        started = time.perf_counter()
        stack.end_session(victim_session)
        stack.end_session(abuser_session)
        left = stack.wait_for_clean_host(timeout=60)
        destroy_s = time.perf_counter() - started
    idle_ms, loaded_ms = statistics.median(idle) * 1000, statistics.median(loaded) * 1000
    return {
        "idle_median_ms": idle_ms,
        "loaded_median_ms": loaded_ms,
        "ratio": loaded_ms / idle_ms,
        "idle_p99_ms": sorted(idle)[int(0.99 * (len(idle) - 1))] * 1000,
        "loaded_p99_ms": sorted(loaded)[int(0.99 * (len(loaded) - 1))] * 1000,
        "api_request_under_load_ms": host_ms,
        "abuser_destroyed_s": destroy_s,
        "abuse_processes": after["pids"],
        "abuser_pids_limit": limit,
        "abuse_reached_pids_limit": full,  # at some moment before the window
        "abuse_settle_s": settle_s,  # until both the pids limit and an OOM kill were seen (or the timeout)
        "abuser_processes_after": abuser_left,  # 0: the abuse ended its own sandbox
        "abuse_cpus_busy": (after["cpu_s"] - before["cpu_s"]) / window,
        "abuse_oom_kills": after["oom_kills"] - start["oom_kills"],
        "left_on_host": sum(len(v) for v in left.values()),
    }
