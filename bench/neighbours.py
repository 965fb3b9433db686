"""Noisy neighbours: one sandbox's keystroke echo latency, idle and while another sandbox runs a
fork bomb, a memory bomb, a disk fill and a CPU burn at once."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import websockets

from tests.stack import Stack, Terminal

ABUSE = (
    "(while :; do :; done) & (while :; do :; done) & "  # CPU burn, two spinners
    "(while :; do head -c 2000000000 /dev/zero | tail; done) 2>/dev/null & "  # memory bomb, OOM-killed in a loop
    "(dd if=/dev/zero of=/root/fill bs=1M 2>/dev/null; sleep 999) & "  # disk fill up to the quota
    "sleep 3; (bomb() { bomb | bomb & }; bomb) 2>/dev/null & "  # then a fork bomb, up to the pids limit
    "true"
)


def cgroup_reading(parent: str) -> dict[str, float]:
    """Processes, CPU seconds and memory-limit hits of every sandbox under ``parent`` (v1 or v2)."""
    root = Path("/sys/fs/cgroup")
    if (root / "pids" / parent).is_dir():  # v1 (or hybrid)
        return {
            "pids": float((root / "pids" / parent / "pids.current").read_text()),
            "cpu_s": int((root / "cpuacct" / parent / "cpuacct.usage").read_text()) / 1e9,
            # OOM kills are counted per cgroup (the parent has no limit of its own): add up the sandboxes'.
            "oom_kills": sum(
                _field(p.read_text(), "oom_kill") for p in (root / "memory" / parent).glob("*/memory.oom_control")
            ),
        }
    stat = dict(line.split() for line in (root / parent / "cpu.stat").read_text().splitlines())
    return {
        "pids": float((root / parent / "pids.current").read_text()),
        "cpu_s": int(stat["usage_usec"]) / 1e6,
        "oom_kills": _field((root / parent / "memory.events").read_text(), "oom_kill"),
    }


def _field(text: str, name: str) -> float:
    """The value of ``name`` in a cgroup file of ``name value`` lines (0 when absent)."""
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


async def measure(stack: Stack, count: int) -> dict[str, float]:
    victim_session = stack.start_session()
    victim = await Terminal.open(stack.terminal_url(victim_session))
    await victim.expect("# ", 20)
    abuser_session = stack.start_session()
    abuser = await Terminal.open(stack.terminal_url(abuser_session))
    await abuser.expect("# ", 20)
    # Read the abuser's terminal as its browser would: unread output now blocks its writers.
    watching = asyncio.create_task(discard_output(abuser))
    try:
        idle = await echo_latencies(victim, count)
        start = cgroup_reading(stack.cgroup_parent)
        await abuser.type(ABUSE + "\n")
        # Let every abuse reach its limit: the fork bomb its pids, the memory bomb the OOM killer.
        deadline = time.monotonic() + ABUSE_SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            reading = cgroup_reading(stack.cgroup_parent)
            if reading["oom_kills"] > start["oom_kills"] and reading["pids"] >= 200:
                break
        before = cgroup_reading(stack.cgroup_parent)
        window = time.perf_counter()
        loaded = await echo_latencies(victim, count)
        await asyncio.sleep(max(0.0, CPU_WINDOW - (time.perf_counter() - window)))
        window = time.perf_counter() - window
        after = cgroup_reading(stack.cgroup_parent)
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
        "abuse_cpus_busy": (after["cpu_s"] - before["cpu_s"]) / window,
        "abuse_oom_kills": after["oom_kills"] - start["oom_kills"],
        "left_on_host": sum(len(v) for v in left.values()),
    }
