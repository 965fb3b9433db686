"""Capacity of a sandbox host (issue #19, acceptance 3): how many sandboxes it creates a second,
sustained, and how much host memory each idle sandbox costs beyond what its own cgroup is charged.
Both are measured through the agent alone (the sandbox host's own part; the web tier may run
elsewhere), on one stack, with no warm pool: every creation starts from nothing.

- **Sustained creation rate.** For BENCH_CAPACITY_SECONDS (60), CONCURRENCY workers each create a
  busybox sandbox, attach to its terminal, wait for the prompt, type a command and wait for its
  answer, then destroy it and start the next. A creation counts as done when the shell answered
  (the moment a visitor could use it), and only if that came within the window. As each worker
  destroys its sandbox before it creates another, at most CONCURRENCY live at once and every
  creation is paid for by a destruction: the host's steady state. Reported: creations a second
  over the window, over each WINDOW (10 s; their minimum and median show whether the rate holds),
  and the median latencies from the create request to its answer and to the command's answer.
  The peer, in the same run, at the same concurrency and for as long: ``runc run`` of the same
  busybox tree (bench/startup.py's peer: same namespaces and limits, no overlay, no network, no
  agent), in the foreground on a PTY until the shell answered the same command, then ``runc
  delete --force``. A detached ``runc run -d`` would need a console socket for the shell's
  terminal (without one ``sh`` ends at once), and would not wait for the prompt. Then the ``docker``
  image for BENCH_CAPACITY_DOCKER_SECONDS (30), where a creation is done when the agent answered the
  create: the engine starting inside is not waited for (its start is the docker section's), and
  the sandbox is destroyed while it starts.
  CONCURRENCY is 2 per core (4 on the 2-core development machine): creating a sandbox is short
  bursts of CPU (runc, seccomp's compilation, the shell) between waits on the kernel (mounts,
  namespaces, cgroups) and on the agent's socket, so two per core keep both cores busy; more only
  queue in the agent and runc and lengthen each creation without raising the rate.
  A warm pool is left off: it moves the work of a creation earlier, but in a steady state each
  pooled sandbox taken is replaced by a cold start, so the sustained rate is the cold start's.
- **Idle density.** BENCH_CAPACITY_IDLE (500) busybox sandboxes are created (4 at a time) and left
  idle, each with its terminal opened once (attach, the prompt, detach) as a visitor's would be.
  The host's memory is read from /proc/meminfo before and after (median of a few readings, nothing
  dropped first): ``used = MemTotal - MemAvailable``, what the host could no longer give without
  swapping or killing; also read at each fifth of the sandboxes, for a slope. What the sandboxes
  are charged is the sum of their cgroups' ``memory.usage_in_bytes`` (v1) or ``memory.current``
  (v2): their processes, page cache (the tmpfs of each writable layer) and kernel memory.
  Reported per sandbox: host memory used, charged, and the difference, which is what the host
  spends on a sandbox outside its cgroup (the agent's and keeper's bookkeeping, network and user
  namespaces made by the agent, lxcfs, the host's side of the veth, slab of objects charged
  elsewhere): the sizing figure. Also the growth of the agent's, keeper's and lxcfs's resident
  memory and open files per sandbox. Then every sandbox is destroyed and the host must be back:
  the stack's census of tests/churn.py (processes, mounts, cgroups, network namespaces, veths,
  addresses, runc state, directories, id ranges, the files the agent, keeper and lxcfs hold) with
  the counts it had before, and its memory used.

Before the stack starts, the host's limits that the sandboxes count against are read and
compared with what BENCH_CAPACITY_IDLE sandboxes need (``host_limits``); a sysctl too low is
raised for the run, and every sysctl the run changed (the agent raises some at its start,
sandbox/host/limits.py) is put back afterwards, each printed. The figures are host-wide: another
load on the machine during the idle part moves them (the slope over the fifths shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import math
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import docker, startup, terminals
from bench.measuring import summary
from sandbox.host import cgroups
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import Kind
from tests import churn
from tests.stack import Stack

CONCURRENCY = 2 * (os.cpu_count() or 1)
WINDOW = 10.0  # seconds of each window the rate is also counted over
COMMAND, ANSWER = b"echo capacity-''answered\n", b"capacity-answered"  # the typed line's echo has the quotes
ANSWERED = "the shell answered a command typed at its first prompt"
IDLE_STEPS = 5  # readings of the host's memory while the idle sandboxes are created
STEP_SETTLE = 2.0  # seconds after each step before its reading
IDLE_SETTLE = 5.0  # seconds the idle sandboxes are left before the final readings
READINGS = 5  # /proc/meminfo readings, 0.2 s apart, whose median is taken
QUIET_MIB = 64  # the host's memory used may come back this far from before (or a tenth of the growth)
# The kernel frees much of what 500 sandboxes held some time after they are gone (network namespaces
# are cleaned up by a work queue, slab objects after RCU grace periods): tens of MiB were still held
# right after the destruction in quiet runs, and gone within a minute. The bench waits this long at most.
BACK_SETTLE = 90.0
MAX_ERRORS = 20  # failed creations before a rate's run stops
MIB = 1024**2
TARGETS = {"busybox_per_s": 20.0, "beyond_charged_mib": 2.0}
# What the host spends besides: the fields of /proc/meminfo whose growth is reported per sandbox.
MEMINFO_FIELDS = ("AnonPages", "Shmem", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu")
# Sysctls the run may change: the agent raises these at its start (sandbox/host/limits.py) and the
# bench those of host_limits that are too low; each one changed is put back after the run.
AGENT_RAISES = ("kernel.keys.maxkeys", "kernel.keys.maxbytes", "kernel.pty.max", "fs.file-max")
BRIDGE_PORTS = 1024  # the kernel's BR_MAX_PORTS: veths on one bridge
# Generous per-sandbox counts of an idle busybox sandbox, for the limits check (an idle one has
# its shell and the runc init's leftovers at most; the agent and keeper hold a few files each).
PROCESSES_EACH = 4
FILES_EACH = 64
NAMESPACES_EACH = 3  # user namespaces: the sandbox's and the one that shifts its image layers


def say(text: str) -> None:
    """A line of the section's table, printed at once."""
    print(text, flush=True)


# -- the host's limits -------------------------------------------------------------------------------
def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> int:
    return int(sysctl_path(name).read_text().split()[0])


def tasks_now() -> int:
    """Processes and threads on the host now."""
    return sum(1 for _ in Path("/proc").glob("[0-9]*/task/[0-9]*"))


def host_limits(count: int) -> list[dict[str, Any]]:
    """The host-wide limits ``count`` idle sandboxes (and the stack's network pool) count against:
    each with its value and what they need. ``sysctl`` ones may be raised; the others may not."""
    pty_nr, files_open = read_sysctl("kernel.pty.nr"), read_sysctl("fs.file-nr")
    sandboxes = count + 16
    tasks = tasks_now() + sandboxes * PROCESSES_EACH
    wanted = [
        ("kernel.pid_max", tasks),
        ("kernel.threads-max", tasks),
        ("kernel.pty.max", pty_nr + read_sysctl("kernel.pty.reserve") + 2 * sandboxes),
        ("fs.file-max", files_open + sandboxes * FILES_EACH),
        ("user.max_user_namespaces", sandboxes * NAMESPACES_EACH),
        *((f"user.max_{kind}_namespaces", sandboxes) for kind in ("net", "mnt", "pid", "ipc", "uts", "cgroup")),
    ]
    limits = [{"name": name, "value": read_sysctl(name), "needed": need, "sysctl": True} for name, need in wanted]
    return [
        *limits,
        # the agent's and keeper's open files: they inherit this process's limit through the launcher
        {
            "name": NOFILE,
            "value": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "needed": sandboxes * 8,
            "sysctl": False,
        },
        {"name": "ports of one bridge (BR_MAX_PORTS)", "value": BRIDGE_PORTS, "needed": sandboxes, "sysctl": False},
    ]


NOFILE = "RLIMIT_NOFILE (soft)"


@contextlib.contextmanager
def limits_for(count: int, put_back: list[str]) -> Iterator[list[dict[str, Any]]]:
    """For the block: the host's limits checked for ``count`` sandboxes (SystemExit naming one that
    cannot be raised), sysctls too low raised, this process's open files raised up to its hard limit
    if needed; afterwards every sysctl that changed during the block put back (lines in ``put_back``)."""
    limits = host_limits(count)
    names = {*AGENT_RAISES, *(limit["name"] for limit in limits if limit["sysctl"])}
    found = {name: read_sysctl(name) for name in names}
    fitting = [
        f"{limit['name']} {limit['value']} ({limit['needed']})" for limit in limits if limit["value"] >= limit["needed"]
    ]
    say(f"  host limits (what {count} sandboxes need about): {', '.join(fitting)}")
    try:
        for limit in limits:
            name, value, needed = limit["name"], limit["value"], limit["needed"]
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            if value >= needed:
                continue
            if limit["sysctl"]:
                sysctl_path(name).write_text(f"{needed}\n")
                say(f"  limit {name} raised from {value} to {needed} for the run")
            elif name == NOFILE and hard >= needed:
                resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
                say(f"  limit {name} of this process raised from {value} to {needed}")
            else:
                raise SystemExit(
                    f"{count} idle sandboxes need {name} of about {needed}, this host has {value}: "
                    "lower BENCH_CAPACITY_IDLE"
                )
        yield limits
    finally:
        for name, value in found.items():
            now = read_sysctl(name)
            if now != value:
                sysctl_path(name).write_text(f"{value}\n")
                put_back.append(f"{name} put back from {now} to {value}")
                say(f"  sysctl {name} put back from {now} to {value} (changed during the run)")


def free_subnet(addresses: int, within: str = "10.190.0.0/15") -> str:
    """A private subnet of at least ``addresses`` addresses that the host does not route yet (a
    stack's /24 holds about 250 sandboxes; the idle part needs more)."""
    prefix = 32 - math.ceil(math.log2(addresses + 2))
    routes = subprocess.run(["ip", "-4", "-o", "route", "show"], capture_output=True, text=True, check=True).stdout
    routed = [ipaddress.ip_network(line.split()[0]) for line in routes.splitlines() if line[:1].isdigit()]
    for candidate in ipaddress.ip_network(within).subnets(new_prefix=min(prefix, 24)):
        if not any(candidate.overlaps(network) for network in routed):
            return str(candidate)
    raise SystemExit(f"no free /{prefix} in {within} for the sandboxes' addresses; see 'ip -4 route'")


# -- 1. sustained creation rate ------------------------------------------------------------------------
@dataclass
class Sustained:
    """One rate's run: each creation's moment of being done (seconds from the start), its latencies."""

    seconds: float
    concurrency: int
    done_at: str  # what makes a creation done
    done: list[float] = field(default_factory=list)
    created: list[float] = field(default_factory=list)  # create request to its answer
    ready: list[float] = field(default_factory=list)  # to the moment it counts as done
    errors: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        counted = [d for d in self.done if d <= self.seconds]
        windows = [(k * WINDOW, (k + 1) * WINDOW) for k in range(int(self.seconds // WINDOW))] or [(0, self.seconds)]
        per_window = [sum(1 for d in counted if a <= d < b) / (b - a) for a, b in windows]
        found: dict[str, Any] = {
            "seconds": self.seconds,
            "concurrency": self.concurrency,
            "done_at": self.done_at,
            "creations": len(counted),
            "per_s": len(counted) / self.seconds,
            "window_s": windows[0][1] - windows[0][0],
            "windows_per_s": per_window,
            "window_min_per_s": min(per_window),
            "window_median_per_s": statistics.median(per_window),
            "ready": summary(self.ready) if self.ready else None,
            "failed": len(self.errors),
            "first_errors": self.errors[:5],
        }
        if self.created:
            found["created"] = summary(self.created)
        return found


Cycle = Callable[[int], Awaitable[tuple[float | None, float]]]


async def sustain(cycle: Cycle, seconds: float, concurrency: int, done_at: str) -> Sustained:
    """``concurrency`` workers each running ``cycle(i)`` (a new ``i`` each time) one after another
    until ``seconds`` have passed; a cycle returns the seconds to its create's answer (None when
    it has none) and to being done (``done_at`` says when that is), counted from its start."""
    run = Sustained(seconds, concurrency, done_at)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency))  # a thread per worker
    start = time.perf_counter()
    numbers = itertools.count()

    async def worker() -> None:
        while time.perf_counter() - start < seconds and len(run.errors) < MAX_ERRORS:
            began = time.perf_counter()
            try:
                created, ready = await cycle(next(numbers))
            except Exception as exc:  # counted and reported; the run goes on
                run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            run.done.append(began + ready - start)
            run.ready.append(ready)
            if created is not None:
                run.created.append(created)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return run


async def agent_cycle(agent: AgentClient, image: str, index: int, answered: bool) -> tuple[float | None, float]:
    """Create a sandbox of ``image`` through the agent (with ``answered``, also wait for the prompt
    and for the shell to answer COMMAND), then destroy it: the seconds to the create's answer and
    to being done."""
    sandbox_id = f"cap{os.getpid()}x{index:06d}"
    began = time.perf_counter()
    try:
        await agent.request("create", id=sandbox_id, hostname="node1", image=image)
        created = time.perf_counter() - began
        if not answered:
            return created, created
        stream = await startup.attach_prompt(agent, sandbox_id)
        try:
            await stream.send(Kind.DATA, COMMAND)
            await startup.stream_until(stream, ANSWER)
        finally:
            await stream.close()
        return created, time.perf_counter() - began
    finally:
        await agent.request("destroy", id=sandbox_id)


def runc_cycle(rootfs: Path, work: Path, index: int) -> tuple[float | None, float]:
    """The peer's cycle: ``runc run`` on a PTY to the shell's answer to COMMAND, then deleted."""
    return None, startup.bare_runc(rootfs, work, index, COMMAND, ANSWER)


def run_rates(stack: Stack, seconds: float, docker_seconds: float) -> dict[str, Any]:
    """The busybox rate through the agent, the runc peer's, then the docker image's."""
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    rootfs = startup.peer_rootfs(stack)

    def measured(name: str, cycle: Cycle, length: float, done_at: str = ANSWERED) -> dict[str, Any]:
        result = asyncio.run(sustain(cycle, length, CONCURRENCY, done_at)).report()
        print_rate(name, result)
        return result

    results = {
        "busybox": measured("busybox, agent", lambda i: agent_cycle(agent, "busybox", i, True), seconds),
    }
    with tempfile.TemporaryDirectory(prefix="pg-bench-capacity-") as work:
        try:
            results["runc"] = measured(
                "busybox, bare runc run", lambda i: asyncio.to_thread(runc_cycle, rootfs, Path(work), i), seconds
            )
        finally:  # runc removes each run's cgroup, not the parent the peer put them under
            cgroups.remove_parent(startup.RUNC_CGROUP_PARENT)
    results["docker"] = measured(
        "docker image, agent",
        lambda i: agent_cycle(agent, "docker", i, False),
        docker_seconds,
        "the agent answered the create (the engine inside not waited for)",
    )
    results["left_by_sandboxes"] = {k: v for k, v in stack.wait_for_clean_host(60).items() if v}
    return results


def print_rate(name: str, result: dict[str, Any]) -> None:
    latencies = [("create answered", result.get("created")), ("shell answered", result["ready"])]
    if result["done_at"] != ANSWERED:
        latencies = latencies[:1]
    say(
        f"  {name:<22} {result['per_s']:6.2f}/s over {result['seconds']:.0f} s ({result['creations']} creations, "
        f"{result['concurrency']} at a time); per {result['window_s']:.0f} s: min {result['window_min_per_s']:.2f}/s, "
        f"median {result['window_median_per_s']:.2f}/s; median "
        + ", ".join(f"{label} {latency['median_ms']:.0f} ms" for label, latency in latencies if latency)
        + f"; {result['failed']} failed"
    )
    for error in result["first_errors"]:
        say(f"    failed: {error}")


# -- 2. idle density -------------------------------------------------------------------------------------
def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes, the median of READINGS readings 0.2 s apart."""
    readings = []
    for i in range(READINGS):
        if i:
            time.sleep(0.2)
        fields = (line.split() for line in Path("/proc/meminfo").read_text().splitlines())
        readings.append({f[0].rstrip(":"): int(f[1]) * 1024 for f in fields if len(f) >= 2})
    return {key: int(statistics.median(r[key] for r in readings)) for key in readings[0]}


async def memory_back(before: int, within: float) -> tuple[dict[str, int], float]:
    """Read the host's memory until its use is back within ``within`` bytes of ``before``, or for
    BACK_SETTLE seconds at most: the last reading, and the seconds it took."""
    began = time.perf_counter()
    while True:
        back = await asyncio.to_thread(meminfo)
        waited = time.perf_counter() - began
        if abs(used(back) - before) <= within or waited >= BACK_SETTLE:
            return back, waited
        await asyncio.sleep(2.0)


def used(info: dict[str, int]) -> int:
    """Memory the host could not give without swapping or killing: MemTotal - MemAvailable."""
    return info["MemTotal"] - info["MemAvailable"]


def memory_cgroup_charge(pid: int | None) -> tuple[str, int] | None:
    """The memory cgroup of process ``pid`` and what it is charged now (v1 ``memory.usage_in_bytes``,
    v2 ``memory.current``); None for the root cgroup (its figure is the whole host's) or no process."""
    mount, v2 = cgroups.controller_mounts()["memory"]
    lines = docker.read(f"/proc/{pid}/cgroup").splitlines() if pid else []
    paths = [
        path
        for hierarchy, controllers, path in (line.split(":", 2) for line in lines)
        if (hierarchy == "0" and not controllers if v2 else "memory" in controllers.split(","))
    ]
    if not paths or paths[0] == "/":
        return None
    usage = docker.read(str(mount / paths[0].lstrip("/") / ("memory.current" if v2 else "memory.usage_in_bytes")))
    return (paths[0], int(usage)) if usage else None


def fd_count(pid: int | None) -> int:
    return len(churn.open_files(pid))


def host_parts(stack: Stack) -> dict[str, int | None]:
    """The pids of the host processes that serve every sandbox."""
    return {"agent": stack.pid_of("agent"), "keeper": stack.pid_of("keeper"), "lxcfs": churn.lxcfs_pid(stack)}


async def idle_sandbox(agent: AgentClient, sandbox_id: str) -> None:
    """A busybox sandbox whose terminal was opened once, up to its prompt, and closed."""
    await agent.request("create", id=sandbox_id, hostname="node1", image="busybox")
    stream = await startup.attach_prompt(agent, sandbox_id, timeout=60)
    await stream.close()


async def idle_density(stack: Stack, count: int, started: list[str]) -> dict[str, Any]:
    """``count`` idle sandboxes: the host's memory, what they are charged, the host parts' growth."""
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    census_before = await churn.settled_census(stack)
    before = await asyncio.to_thread(meminfo)
    parts = host_parts(stack)
    rss_before = {name: terminals.rss_bytes(pid) if pid else 0 for name, pid in parts.items()}
    fds_before = {name: fd_count(pid) for name, pid in parts.items()}
    services_before = memory_cgroup_charge(parts["agent"])
    steps = [(0, used(before))]
    created_s = 0.0
    for step in range(1, IDLE_STEPS + 1):
        ids = [f"idle{os.getpid()}x{n:05d}" for n in range(len(started), count * step // IDLE_STEPS)]
        started.extend(ids)
        began = time.perf_counter()
        await docker.bounded([idle_sandbox(agent, sandbox_id) for sandbox_id in ids])
        created_s += time.perf_counter() - began
        await asyncio.sleep(IDLE_SETTLE if step == IDLE_STEPS else STEP_SETTLE)
        steps.append((len(started), used(await asyncio.to_thread(meminfo))))
    after = await asyncio.to_thread(meminfo)
    charged = [docker.memory_charged(stack.cgroup_parent, r) for r in await docker.runtime_ids(stack, started)]
    rss_growth = {name: (terminals.rss_bytes(pid) if pid else 0) - rss_before[name] for name, pid in parts.items()}
    fds_growth = {name: fd_count(pid) - fds_before[name] for name, pid in parts.items()}
    services_after = memory_cgroup_charge(parts["agent"])
    destroyed_s = await docker.destroy(stack, started)
    started.clear()
    census_after = await churn.settled_census(stack, census_before, 120)
    quiet_within = max(QUIET_MIB * MIB, (used(after) - used(before)) / 10)
    back, back_s = await memory_back(used(before), quiet_within)
    host_each = (used(after) - used(before)) / count / MIB
    charged_each = sum(c["usage"] for c in charged) / count
    slope = statistics.linear_regression([float(n) for n, _ in steps], [u / MIB for _, u in steps]).slope
    return {
        "sandboxes": count,
        "created_in_s": created_s,
        "destroyed_in_s": destroyed_s,
        "memory_figure": "used = MemTotal - MemAvailable (/proc/meminfo), median of 5 readings, nothing dropped",
        "host_used_before_mib": used(before) / MIB,
        "host_used_after_mib": used(after) / MIB,
        "host_used_each_mib": host_each,
        "host_used_slope_each_mib": slope,
        "host_used_steps_mib": [(n, u / MIB) for n, u in steps],
        "charged_each_mib": charged_each,
        "charged": docker.memory_summary(charged),
        "beyond_charged_each_mib": host_each - charged_each,
        "meminfo_growth_each_kib": {k: (after[k] - before[k]) / count / 1024 for k in MEMINFO_FIELDS if k in after},
        "rss_growth_each_kib": {name: grown / count / 1024 for name, grown in rss_growth.items()},
        "open_files_each": {name: grown / count for name, grown in fds_growth.items()},
        # The agent's own cgroup (with the stack's other processes and the bench's): what it is charged
        # for the sandboxes (the namespaces and veths it makes, its own memory) whatever else runs on the host.
        "services_cgroup": services_after[0] if services_before and services_after else None,
        "services_charged_growth_each_mib": (services_after[1] - services_before[1]) / count / MIB
        if services_before and services_after
        else None,
        "host_used_back_mib": (used(back) - used(before)) / MIB,
        "host_back_after_s": back_s,
        # Nothing else moved the host's memory much: it came back near where it was once they were gone.
        "host_quiet": abs(used(back) - used(before)) <= quiet_within,
        "left_on_host": churn.census_changes(census_before, census_after),
    }


def print_idle(result: dict[str, Any]) -> None:
    n = result["sandboxes"]
    beyond = result["beyond_charged_each_mib"]
    verdict = ("met" if beyond <= TARGETS["beyond_charged_mib"] else "MISSED") if result["host_quiet"] else "NOT QUIET"
    say(
        f"  {n} idle busybox sandboxes (created in {result['created_in_s']:.1f} s, destroyed in "
        f"{result['destroyed_in_s']:.1f} s), host memory used (MemTotal - MemAvailable) "
        f"{result['host_used_before_mib']:.0f} -> {result['host_used_after_mib']:.0f} MiB"
    )
    say(
        f"  per sandbox: host used {result['host_used_each_mib']:.2f} MiB (slope over the fifths "
        f"{result['host_used_slope_each_mib']:.2f}), charged to its cgroup {result['charged_each_mib']:.2f} MiB, "
        f"beyond what it is charged {beyond:.2f} MiB (target <= {TARGETS['beyond_charged_mib']:.0f} MiB: {verdict})"
    )
    median = result["charged"]["median_mib"]
    say(
        f"    charged, median: anon {median['anon']:.2f}, page cache {median['file']:.2f} "
        f"(tmpfs {median['shmem']:.2f}), kernel {median['kernel_and_other']:.2f} MiB; host meminfo growth each: "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["meminfo_growth_each_kib"].items())
        + " KiB"
    )
    if result["services_cgroup"]:
        say(
            f"    the agent's memory cgroup ({result['services_cgroup']}, the stack's processes) was charged "
            f"{result['services_charged_growth_each_mib']:.2f} MiB more per sandbox"
        )
    say(
        "    growth each: resident "
        + ", ".join(f"{k} {v:.1f} KiB" for k, v in result["rss_growth_each_kib"].items())
        + "; open files "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["open_files_each"].items())
    )
    say(
        f"    after destroying them all: host used {result['host_used_back_mib']:+.0f} MiB against before "
        f"({result['host_back_after_s']:.0f} s after the last was gone); "
        f"left on the host: {'; '.join(result['left_on_host']) or 'nothing'}"
    )
    if not result["host_quiet"]:
        say(
            "    NOT QUIET: the host's memory did not come back near where it was, so something else ran "
            "meanwhile and the host-wide figures above include it; the agent's cgroup's growth does not"
        )


# -- the section ------------------------------------------------------------------------------------------
def run(seconds: float, docker_seconds: float, idle: int) -> dict[str, Any]:
    """Both measures on one stack, the host's limits checked first and its sysctls put back after."""
    put_back: list[str] = []
    results: dict[str, Any] = {}
    with limits_for(idle, put_back) as limits:
        stack = docker.docker_stack(
            PLAYGROUND_HOST_MAX_SANDBOXES=str(max(idle + 10, 100)),
            PLAYGROUND_SANDBOX_SUBNET=free_subnet(idle + 64),
            PLAYGROUND_REAPER_INTERVAL="3600",  # the sandboxes started through the agent have no session
        )
        started: list[str] = []
        try:
            results["rates"] = run_rates(stack, seconds, docker_seconds)
            results["idle"] = asyncio.run(idle_density(stack, idle, started))
            print_idle(results["idle"])
        finally:
            if started:
                asyncio.run(docker.destroy(stack, started))
            results["left_by_stack"] = docker.stop_stack(stack)
    results["limits"] = limits
    results["sysctls_put_back"] = put_back
    rates = results["rates"]
    busybox, runc, docker_image = rates["busybox"], rates["runc"], rates["docker"]
    ratios = {
        "busybox_rate_over_runc": (busybox["per_s"], runc["per_s"]),
        "busybox_done_over_runc_median": (median_ms(busybox["ready"]), median_ms(runc["ready"])),
        "docker_rate_over_busybox": (docker_image["per_s"], busybox["per_s"]),
    }
    results["ratios"] = {name: a / b for name, (a, b) in ratios.items() if a and b}
    results["targets_met"] = {
        "busybox_per_s": rates["busybox"]["per_s"] >= TARGETS["busybox_per_s"],
        # judged only on a quiet host (None otherwise: the host-wide figure includes other work)
        "beyond_charged_mib": results["idle"]["beyond_charged_each_mib"] <= TARGETS["beyond_charged_mib"]
        if results["idle"]["host_quiet"]
        else None,
    }
    print_verdict(results)
    return results


def median_ms(latencies: dict[str, float] | None) -> float:
    """The median of a latency summary, 0 when nothing was done."""
    return latencies["median_ms"] if latencies else 0.0


def print_verdict(results: dict[str, Any]) -> None:
    met = results["targets_met"]
    busybox = results["rates"]["busybox"]["per_s"]
    say(
        f"  busybox creations {busybox:.2f}/s (target >= {TARGETS['busybox_per_s']:.0f}/s: "
        f"{'met' if met['busybox_per_s'] else 'MISSED'}); ratios (rates, medians): "
        + ", ".join(f"{k} = {v:.2f}x" for k, v in results["ratios"].items())
    )
    say(
        f"  left on the host by the rates' sandboxes: {results['rates']['left_by_sandboxes'] or 'nothing'}; "
        f"by the stack after its stop: {results['left_by_stack'] or 'nothing'}"
    )
