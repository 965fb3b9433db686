"""Create/destroy churn against a real stack, with mixed endings, and a census of the host
before and after: ``tests/integration/test_churn.py`` runs 300 cycles, ``make bench`` 1000.

A cycle is one session, from ``POST /api/sessions/`` until the database says ``ended``. Ordinary
cycles run ``concurrency`` at a time and end in one of three ways:

- ``delete``: a terminal sees the prompt, then ``DELETE``; the terminal is told ``deleted`` (4410);
- ``expiry``: a terminal stays connected until the ``exit`` event ``expired`` and close 4410;
- ``idle``: nobody ever connects; the reaper ends it as ``idle``;
- ``nodes``: a session of three nodes: node2 and node3 are added through the API, node3 is removed
  at once (often while it is still being created), node2 once its terminal shows the prompt (its
  viewer is told ``node_removed``, close 1000), then the session is deleted as in ``delete``.

Every DOCKER_EVERY-th ordinary cycle is a sandbox of the ``docker`` image instead (built in the stack
from var/cache when the churn starts), ending in turn like the three above (``docker_delete``,
``docker_expiry``, ``docker_idle``): at its prompt it starts inner containers that keep running until
the sandbox's end (INNER_CONTAINERS: one sleeping, one serving port 8080 through docker-proxy and the
inner nat table), so its end must take down the engine, containerd and its shims, the inner
containers' cgroups below the sandbox's own, their network namespaces, veths and bridge, and the
engine's filesystem. An idle one is watched while its containers start, then left alone.

Between them, kill events, at most one part every ``KILL_SPACING`` seconds (so that the
launcher's restart delay is back to 0.5 s and it never gives up), each with ``KILL_BATCH`` cycles:

- ``agent_killed``: sessions are started and the agent gets SIGKILL right after the POSTs, mid-create.
  The session lives on: provisioning asks the restarted agent again, which adopted every finished
  sandbox and removed the half-made ones; a terminal works; it is deleted. One of them is a docker
  sandbox's (``docker_agent_killed``). Before them, one ``docker_adopted`` cycle: a docker sandbox
  whose inner containers run at the kill; the restarted agent adopts it, its containers still run
  and serve, and it is deleted.
- ``worker_killed``: sessions with a prompt are deleted and the worker gets SIGKILL right after,
  mid-destroy (new creations wait meanwhile, so that no provisioning is lost with it). Their
  destruction is queued again by the reaper (PLAYGROUND_ENDING_REQUEUE_AFTER); they end ``deleted``.
  One of them is a docker sandbox's whose inner containers run (``docker_worker_killed``).
- ``redis_killed``: sessions with a prompt live through a SIGKILL of Redis (broker and channel
  layer, no persistence; new creations wait meanwhile, as a queued provisioning would be lost with
  it): afterwards their shells still answer, and they are deleted.
- ``beat_killed``: sessions nobody opens are started and beat gets SIGKILL; the restarted beat's
  reaper still ends them ``idle``.

An ordinary cycle alive while the agent or Redis was down is *disturbed*: its terminal may close
(with 4503 for the agent), and is opened again as the page does; a POST may be refused with 503 and is tried again;
it may also end ``failed`` or ``host_lost``; and if a step still fails, it is deleted instead.
Everything else that goes otherwise is a problem the report lists. Every session is extended
once (but for ``expiry`` cycles), so that a busy host never turns a slow end into an expiry.

After the last cycle, once every session has ended, the agent reconciles once (its periodic
reconciliation is off meanwhile, so this one shows whatever the churn left) and the host's
census (processes, mounts, cgroups with every cgroup nested below a sandbox's, network namespaces,
veths, nftables addresses, runtime state, sandbox directories, the stack's own processes, the files
the keeper, the agent and lxcfs hold open, the id ranges held) must have the counts it had before
(the warm pool's sandboxes are new ones). What a docker sandbox makes inside its own mount and
network namespaces (the engine's tmpfs and overlay mounts, lxcfs's files bound over its /proc, the
inner bridge, veths and nat rules) is the host's only through those namespaces, which a process, a
mount or an open file must hold: the census counts each such holder.

Id ranges (one per sandbox, recorded by the kernel as the owner of the sandbox's layer, claimed
when the network pool prepares its place): while the cycles run, the layers mounted on the host
are looked at every RANGE_WATCH_INTERVAL, and two layers holding one range at once is a problem;
afterwards every range still held must belong to a sandbox that is still there (the warm pool's)
or to a place waiting in the network pool, so none leaked (the census's counts, compared with
those before, catch a pool that grew).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets

from playground.launcher.checks import redis_answers
from sandbox.host import cgroups, idranges
from sandbox.settings import load as load_settings
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError
from tests.dockerkit import build_docker_image
from tests.imagekit import CACHE
from tests.stack import Response, Stack, Terminal
from tests.waiting import eventually_async

# Short lifetimes so that expiry and idleness come quickly; room for every cycle at once.
SETTINGS = {
    "PLAYGROUND_SESSION_TTL": "8",
    "PLAYGROUND_SESSION_EXTEND": "60",
    "PLAYGROUND_IDLE_TIMEOUT": "5",
    "PLAYGROUND_REAPER_INTERVAL": "1",
    "PLAYGROUND_ENDING_REQUEUE_AFTER": "5",
    "PLAYGROUND_MAX_SESSIONS": "1000",
    "PLAYGROUND_HOST_MAX_SANDBOXES": "1000",
    "PLAYGROUND_WARM_POOL": "2",
    "PLAYGROUND_IMAGE_CACHE": str(CACHE),  # the docker image is built from its cached tree
    # The agent's own reconciliation waits until the end, so that it shows what the churn left.
    "PLAYGROUND_RECONCILE_INTERVAL": "3600",
}
ORDINARY = ("delete", "nodes", "expiry", "delete", "idle")  # the mix, repeated
DOCKER_IMAGE = "docker"
DOCKER_EVERY = 5  # every 5th ordinary cycle is a docker sandbox's
DOCKER_ENDINGS = ("docker_delete", "docker_expiry", "docker_idle")  # in turn
# Inner containers that run until the sandbox's end: one sleeping, one serving port 8080 (through
# docker-proxy, and the nat rules the engine adds); the page is fetched, so both are up. The views
# lxcfs serves are read first (lxcfs follows the load of a sandbox whose loadavg was read). The page is
# asked for again for up to 10 s: `docker run -d` answers before the server in the container listens.
INNER_CONTAINERS = (
    "cat /proc/meminfo /proc/loadavg /proc/uptime >/dev/null && "
    "docker run -d busybox sleep 1000 >/dev/null && "
    "docker run -d -p 8080:80 busybox httpd -f -p 80 -h /etc >/dev/null && "
    "for try in $(seq 50); do "
    "curl -sf localhost:8080/passwd | grep -q ^root: && echo inner-containers-up && break; sleep 0.2; "
    "done"
)
INNER_STILL_UP = "docker ps -q | wc -l; curl -sf localhost:8080/passwd | head -1"
EXPECTED = {
    "delete": {"deleted"},
    "expiry": {"expired"},
    "idle": {"idle"},
    "nodes": {"deleted"},
    "docker_delete": {"deleted"},
    "docker_expiry": {"expired"},
    "docker_idle": {"idle"},
    "agent_killed": {"deleted"},
    "docker_agent_killed": {"deleted"},
    "docker_adopted": {"deleted"},
    "worker_killed": {"deleted"},
    "docker_worker_killed": {"deleted"},
    "redis_killed": {"deleted"},
    "beat_killed": {"idle"},
}
DISTURBED_MAY_END = {"deleted", "failed", "host_lost"}  # an ordinary cycle alive while the agent was down
KILL_SPACING = 33.0  # seconds between kill events; each part is killed every fourth event (> 60 s apart)
KILL_BATCH = 4  # cycles per kill event
CONCURRENCY = 8  # ordinary cycles at once
CYCLE_TIMEOUT = 120.0
AFTER_AGENT_KILL = 3.0  # seconds after the agent answers again during which a cycle still counts as disturbed
AFTER_REDIS_KILL = 5.0  # the same after Redis (its clients reconnect with a backoff of their own)
RANGE_WATCH_INTERVAL = 0.25  # seconds between looks at the id ranges held


Step = Callable[[Terminal], Awaitable[object]]  # something done on a terminal
FAILURES = (AssertionError, TimeoutError, OSError, websockets.WebSocketException)


@dataclass
class Cycle:
    kind: str
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0
    session: dict[str, Any] = field(default_factory=dict)
    terminal: Terminal | None = None
    reason: str | None = None
    disturbed: bool = False
    problem: str | None = None
    inner_up: float = 0.0  # a docker cycle's: seconds from its start until its inner containers served
    expired_early: bool = False  # a docker_expiry cycle whose session expired before they served

    @property
    def docker(self) -> bool:
        """Whether the cycle's sandbox is of the docker image."""
        return self.kind.startswith("docker_")

    def note(self, problem: str) -> None:
        self.problem = f"{self.problem}; {problem}" if self.problem else problem


@dataclass
class Report:
    """What a churn run did and left."""

    cycles: list[Cycle]
    seconds: float
    before: dict[str, list[str]]
    after: dict[str, list[str]]
    reconciled: list[str]  # what the agent's reconciliation after the churn found and removed
    refused: int  # POSTs answered 503 while the agent was down (tried again)
    log: Path  # the stack's log, kept when anything went otherwise
    began: float  # time.monotonic() at the first cycle
    kills: list[tuple[float, str]]  # when each part was killed (time.monotonic())
    requeued: int  # destructions the reaper queued again (lost with a killed worker)
    ranges_seen: int = 0  # distinct (sandbox, id range) pairs seen while the cycles ran
    range_problems: list[str] = field(default_factory=list)  # a range held twice at once, or leaked

    @property
    def rate(self) -> float:
        return len(self.cycles) / self.seconds

    def reasons(self) -> dict[str, Counter[str]]:
        """For each kind of cycle, how many ended with each reason."""
        found: dict[str, Counter[str]] = {kind: Counter() for kind in EXPECTED}
        for cycle in self.cycles:
            found[cycle.kind][cycle.reason or "(not ended)"] += 1
        return found

    def problems(self) -> list[str]:
        """Cycles that went otherwise than their kind allows, one line each."""
        lines = []
        for cycle in self.cycles:
            allowed = EXPECTED[cycle.kind] | (DISTURBED_MAY_END if cycle.disturbed else set())
            if cycle.problem or cycle.reason not in allowed:
                lines.append(
                    f"{cycle.kind} cycle of session {cycle.session.get('id')} "
                    f"(from {cycle.started - self.began:.1f} s to {cycle.finished - self.began:.1f} s, "
                    f"{'disturbed' if cycle.disturbed else 'undisturbed'}) ended "
                    f"{cycle.reason!r}, allowed {sorted(allowed)}: {cycle.problem or 'wrong reason'}"
                )
        return lines + self.range_problems

    def leftovers(self) -> str:
        """The census kinds whose count differs from before, with what was added and removed; '' if none."""
        return "\n".join(census_changes(self.before, self.after))

    def docker_cycles(self) -> list[Cycle]:
        """The cycles of docker sandboxes."""
        return [cycle for cycle in self.cycles if cycle.docker]

    def inner_up(self) -> list[float]:
        """For each docker cycle whose inner containers came up, seconds from its start until then, sorted."""
        return sorted(cycle.inner_up for cycle in self.docker_cycles() if cycle.inner_up)

    def as_dict(self) -> dict[str, Any]:
        """The figures, for make bench's JSON."""
        return {
            "cycles": len(self.cycles),
            "seconds": self.seconds,
            "cycles_per_second": self.rate,
            "reasons": {kind: dict(reasons) for kind, reasons in self.reasons().items()},
            "docker_cycles": len(self.docker_cycles()),
            "docker_inner_containers_up_seconds": self.inner_up(),
            "disturbed": sum(c.disturbed for c in self.cycles),
            "refused_posts": self.refused,
            "requeued_destructions": self.requeued,
            "id_ranges_seen": self.ranges_seen,
            "reconciled": self.reconciled,
            "leftovers": self.leftovers(),
            "problems": self.problems(),
            "census_before": counts(self.before),
            "census_after": counts(self.after),
        }

    def summary(self) -> str:
        per_kind = "; ".join(
            f"{kind} {sum(c.values())} ({', '.join(f'{r} {n}' for r, n in sorted(c.items()))})"
            for kind, c in self.reasons().items()
        )
        disturbed = sum(c.disturbed for c in self.cycles)
        kills = ", ".join(f"{part} at {at - self.began:.1f} s" for at, part in self.kills)
        up = self.inner_up()
        return (
            f"{len(self.cycles)} cycles in {self.seconds:.0f} s ({self.rate:.2f}/s); {per_kind}; "
            f"{len(self.docker_cycles())} of docker sandboxes, {len(up)} with inner containers up "
            f"(after {up[len(up) // 2] if up else 0:.1f} s median, {max(up, default=0):.1f} s at most); "
            f"killed: {kills} "
            f"({self.requeued} destructions queued again); "
            f"{disturbed} disturbed by an agent or Redis kill ({self.refused} POSTs refused meanwhile); "
            f"{self.ranges_seen} id ranges handed out, {len(self.range_problems)} held twice or leaked; "
            f"removed by the final reconciliation: "
            f"{', '.join(self.reconciled) or 'nothing'}; leftovers: {self.leftovers() or 'none'}"
            + (f"; {len(self.problems())} problems (the stack's log is kept: {self.log})" if self.problems() else "")
        )


def census(stack: Stack) -> dict[str, list[str]]:
    """What the host holds for this stack: Stack.host_state, the cgroups nested below the sandboxes'
    own (an inner engine's), the stack's own processes, the files the keeper (terminals), the agent
    and lxcfs hold open (but the agent's sockets and pipes: its clients come and go), lxcfs's files
    bound in the host's mount namespace, the id ranges."""
    return {
        **stack.host_state(),
        "nested_cgroups": nested_cgroups(stack),
        "service_processes": stack.service_processes(),
        "keeper_fds": open_files(stack.pid_of("keeper")),
        "agent_fds": [f for f in open_files(stack.pid_of("agent")) if not f.split(":", 1)[1].startswith(CONNECTIONS)],
        "lxcfs_fds": open_files(lxcfs_pid(stack)),
        "lxcfs_over_host_files": lxcfs_over_host_files(),
        "id_ranges": sorted(f"{runtime_id}:{start}" for runtime_id, start in held_ranges(stack).items()),
    }


CONNECTIONS = ("socket:", "pipe:")


def nested_cgroups(stack: Stack) -> list[str]:
    """Every cgroup directory below a sandbox's own, in every hierarchy (an inner engine makes
    ``docker/<container>`` there). Stack.host_state counts the sandboxes' own directories, which a
    nested one left behind keeps too; this names it."""
    found = []
    for hierarchy in cgroups.hierarchies():
        base = hierarchy / stack.cgroup_parent
        for sandbox in base.iterdir() if base.is_dir() else ():
            found += [str(Path(top, name)) for top, names, _files in os.walk(sandbox) for name in names]
    return sorted(found)


def lxcfs_over_host_files() -> list[str]:
    """lxcfs's files bound anywhere in this (the host's) mount namespace but at an lxcfs mount point
    (``<data>/lxcfs``): its views belong in sandboxes only (over the host's /proc they hang its readers)."""
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields, _, filesystem = line.partition(" - ")
            point = fields.split()[4]
            if filesystem.startswith("fuse.lxcfs ") and Path(point).name != "lxcfs":
                found.append(point)
    return sorted(found)


def lxcfs_pid(stack: Stack) -> int | None:
    """The pid of the agent's lxcfs (its pidfile; None without one)."""
    try:
        return int((stack.data_dir / "agent" / "lxcfs.pid").read_text())
    except (OSError, ValueError):
        return None


def held_ranges(stack: Stack) -> dict[str, int]:
    """The first id of the range each sandbox of ``stack`` holds now, by runtime id, and each place
    of its network pool, by ``net/<network id>``: the kernel's record (the owner of its layer's
    tmpfs, see sandbox.host.idranges)."""
    return ours(stack, idranges.taken(load_settings(stack.env).uid_base))


def ours(stack: Stack, taken: dict[Path, int]) -> dict[str, int]:
    """The ranges in ``taken`` held by ``stack``'s sandboxes (by runtime id) and pool places (``net/<id>``)."""
    agent = stack.data_dir / "agent"
    held = {}
    for point, start in taken.items():
        if point.parent.parent == agent / "sandboxes":
            held[point.parent.name] = start
        elif point.parent.parent == agent / "net":
            held[f"net/{point.parent.name}"] = start
    return held


def ranges_held_twice(taken: dict[Path, int]) -> list[str]:
    """The ranges that more than one sandbox layer on the host holds, one line each."""
    holders: dict[int, list[str]] = {}
    for point, start in taken.items():
        holders.setdefault(start, []).append(point.parent.name)
    return [f"id range {start} is held by {sorted(ids)} at once" for start, ids in holders.items() if len(ids) > 1]


def open_files(pid: int | None) -> list[str]:
    """What the process's file descriptors point at, e.g. ``/dev/pts/ptmx`` (none without a process)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").glob("*") if pid else ():
        try:
            found.append(f"{fd.name}:{os.readlink(fd)}")
        except OSError:
            continue
    return sorted(found)


def schedule(count: int) -> list[str]:
    """The kinds of ``count`` ordinary cycles: ORDINARY repeated, but every DOCKER_EVERY-th one a
    docker sandbox's, ending as DOCKER_ENDINGS say in turn."""
    ordinary, docker = itertools.cycle(ORDINARY), itertools.cycle(DOCKER_ENDINGS)
    return [next(docker) if n % DOCKER_EVERY == DOCKER_EVERY - 1 else next(ordinary) for n in range(count)]


def counts(state: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(items) for kind, items in state.items()}


def census_changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """The census kinds whose count differs between ``before`` and ``after``, one line each with
    what was added and removed."""
    lines = []
    for kind in sorted(set(before) | set(after)):
        old, new = before.get(kind, []), after.get(kind, [])
        if len(old) != len(new):
            lines.append(
                f"{kind}: {len(old)} before, {len(new)} after; "
                f"new {sorted(set(new) - set(old))}, gone {sorted(set(old) - set(new))}"
            )
    return lines


class Churn:
    """Runs ``total`` cycles against ``stack`` (started with SETTINGS) and reports."""

    def __init__(self, stack: Stack, total: int, concurrency: int = CONCURRENCY) -> None:
        self.stack = stack
        self.total = total
        self.concurrency = concurrency
        self.kill_events = max(1, total // 150) * 2  # in turn the agent, the worker, Redis and beat
        # KILL_BATCH cycles each, and a docker_adopted one with each agent kill
        self.kill_cycles = self.kill_events * KILL_BATCH + len(range(0, self.kill_events, 4))
        self.cycles: list[Cycle] = []
        self.agent_down: list[tuple[float, float]] = []  # (killed, answering again + AFTER_AGENT_KILL)
        self.agent_dying = False  # between the agent's kill and its first answer after it
        self.redis_down: list[tuple[float, float]] = []  # (killed, answering again + AFTER_REDIS_KILL)
        self.redis_dying = False
        self.may_create = asyncio.Event()  # cleared while the worker is about to be killed
        self.posting = 0  # POSTs under way
        self.refused = 0  # POSTs answered 503 while the agent was down
        self.kills: list[tuple[float, str]] = []
        self.agent = AgentClient(stack.data_dir / "run" / "agent.sock")
        self.ranges_seen: set[tuple[str, int]] = set()
        self.range_problems: list[str] = []

    async def run(self) -> Report:
        """The churn and its report; the stack keeps its directory (and log) if anything went otherwise."""
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4 * self.concurrency + 8))
        self.stack.keep_files = True  # until the report is clean
        await asyncio.to_thread(build_docker_image, self.stack)  # seconds: var/cache holds its tree
        before = await self.settle()
        started = time.monotonic()
        self.may_create.set()
        kinds = iter(schedule(self.total - self.kill_cycles))
        cycles_done = asyncio.Event()
        watcher = asyncio.create_task(self.watch_ranges(cycles_done))
        await asyncio.gather(self.killer(), *(self.runner(kinds) for _ in range(self.concurrency)))
        cycles_done.set()
        await watcher
        seconds = time.monotonic() - started
        for cycle in self.cycles:
            cycle.disturbed = any(
                cycle.started <= end and killed <= cycle.finished for killed, end in self.agent_down + self.redis_down
            )
        await self.all_ended()
        reconciled = (await self.agent.request("reconcile"))["removed"]
        after = await self.settle(like=before)
        for entry in after["id_ranges"]:
            holder = entry.split(":")[0]
            pooled = holder.startswith("net/")  # a place waiting in the pool (ours() names them so)
            if holder not in after["sandbox_dirs"] and not pooled:
                self.range_problems.append(f"id range {entry} leaked: neither a sandbox nor a ready place holds it")
        requeued = self.stack.log_path.read_text(errors="replace").count("re-queueing destruction of session")
        report = Report(
            self.cycles,
            seconds,
            before,
            after,
            reconciled,
            self.refused,
            self.stack.log_path,
            started,
            self.kills,
            requeued,
            len(self.ranges_seen),
            self.range_problems,
        )
        self.stack.keep_files = bool(report.problems() or report.leftovers() or reconciled)
        return report

    async def watch_ranges(self, done: asyncio.Event) -> None:
        """Until ``done``: note every (sandbox, range) of this stack and every range held twice on the host."""
        base = load_settings(self.stack.env).uid_base
        while not done.is_set():
            taken = await asyncio.to_thread(idranges.taken, base)
            self.ranges_seen |= set(ours(self.stack, taken).items())
            self.range_problems += [p for p in ranges_held_twice(taken) if p not in self.range_problems]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), RANGE_WATCH_INTERVAL)

    # -- scheduling ---------------------------------------------------------------------------
    async def runner(self, kinds: Iterator[str]) -> None:
        scripts = {
            "delete": self.delete,
            "expiry": self.expiry,
            "idle": self.idle,
            "nodes": self.nodes,
            "docker_delete": self.docker_delete,
            "docker_expiry": self.docker_expiry,
            "docker_idle": self.docker_idle,
        }
        for kind in kinds:  # shared: each runner takes the next kind
            await self.cycle(kind, scripts[kind])

    async def killer(self) -> None:
        for event in range(self.kill_events):
            await asyncio.sleep(2 if event == 0 else KILL_SPACING)  # the schedule of kills: time is the point
            await (self.agent_kill, self.worker_kill, self.redis_kill, self.beat_kill)[event % 4]()

    async def cycle(self, kind: str, script: Callable[[Cycle], Awaitable[None]]) -> None:
        """Run one cycle's script; if it fails, end the session by DELETE, and note why unless
        the agent was down meanwhile."""
        cycle = Cycle(kind)
        self.cycles.append(cycle)
        try:
            await asyncio.wait_for(script(cycle), CYCLE_TIMEOUT)
        except FAILURES as exc:
            if not cycle.session:
                cycle.note(f"it never started: {type(exc).__name__}: {exc}")
            elif not self.disrupted_since(cycle.started):
                cycle.note(f"{type(exc).__name__}: {exc}")
            await self.end_anyway(cycle)
        finally:
            if cycle.terminal is not None:
                await cycle.terminal.close()
        cycle.finished = time.monotonic()

    async def end_anyway(self, cycle: Cycle) -> None:
        """DELETE the cycle's session (harmless if it has ended) and wait for its end."""
        if not cycle.session:
            return
        try:
            await self.delete_session(cycle.session)
            cycle.reason = await self.ended(cycle.session)
        except FAILURES as exc:
            cycle.note(f"then it could not be ended: {type(exc).__name__}: {exc}")

    def agent_was_down_since(self, since: float) -> bool:
        return self.agent_dying or any(end >= since for _killed, end in self.agent_down)

    def redis_was_down_since(self, since: float) -> bool:
        return self.redis_dying or any(end >= since for _killed, end in self.redis_down)

    def disrupted_since(self, since: float) -> bool:
        return self.agent_was_down_since(since) or self.redis_was_down_since(since)

    # -- ordinary cycles ----------------------------------------------------------------------
    async def delete(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=True)
        await self.on_terminal(cycle, lambda terminal: terminal.expect("# ", timeout=30))
        await self.delete_session(cycle.session)
        await self.on_terminal(cycle, lambda terminal: self.told(terminal, "deleted"))
        cycle.reason = await self.ended(cycle.session)

    async def expiry(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=False)
        await self.on_terminal(cycle, lambda terminal: terminal.expect("# ", timeout=30))
        await self.on_terminal(cycle, lambda terminal: self.told(terminal, "expired", timeout=30))
        cycle.reason = await self.ended(cycle.session)

    async def idle(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=True)
        cycle.reason = await self.ended(cycle.session)

    async def nodes(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=True)
        node2, _node3 = [await self.add_node(cycle.session) for _ in range(2)]
        await self.on_terminal(cycle, lambda terminal: terminal.expect("# ", timeout=30))
        await self.remove_node(cycle.session, "node3")
        viewer = await Terminal.open(self.stack.terminal_url({**cycle.session, "instances": [node2]}))
        try:
            await viewer.expect("# ", timeout=30)
            await self.remove_node(cycle.session, "node2")
            exit_event = await viewer.expect_event("exit", timeout=15)
            assert exit_event["reason"] == "node_removed", exit_event
            code = await viewer.closed(timeout=10)
            assert code == 1000, f"node2's viewer closed with {code}"
        finally:
            await viewer.close()
        await self.delete_session(cycle.session)
        await self.on_terminal(cycle, lambda terminal: self.told(terminal, "deleted"))
        cycle.reason = await self.ended(cycle.session)

    async def add_node(self, session: dict[str, Any]) -> dict[str, Any]:
        """POST a node to ``session``; its instance JSON."""
        response = await asyncio.to_thread(
            self.stack.request, "POST", f"/api/sessions/{session['id']}/instances/", {}, headers=auth(session)
        )
        assert response.status == 201, f"adding a node answered {response.status}: {response.body[:300]!r}"
        return dict(response.json())

    async def remove_node(self, session: dict[str, Any], name: str) -> None:
        response = await asyncio.to_thread(
            self.stack.request, "DELETE", f"/api/sessions/{session['id']}/instances/{name}/", headers=auth(session)
        )
        assert response.status == 204, f"removing {name} answered {response.status}: {response.body[:300]!r}"

    # -- docker cycles ------------------------------------------------------------------------
    async def docker_delete(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=True, image=DOCKER_IMAGE)
        await self.start_inner_containers(cycle)
        await self.delete_session(cycle.session)
        await self.on_terminal(cycle, lambda terminal: self.told(terminal, "deleted"))
        cycle.reason = await self.ended(cycle.session)

    async def docker_expiry(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=False, image=DOCKER_IMAGE)
        try:
            await self.start_inner_containers(cycle)
        except websockets.ConnectionClosed:
            # On a loaded host (a whole make test beside it) the session's 8 s can run out before
            # its engine has both inner containers up: the expiry this cycle checks came first.
            assert cycle.terminal is not None and cycle.terminal.ws.close_code == 4410, "closed, not ended"
            exit_event = await cycle.terminal.expect_event("exit", timeout=1)
            assert exit_event["reason"] == "expired", exit_event
            cycle.expired_early = True
        else:
            await self.on_terminal(cycle, lambda terminal: self.told(terminal, "expired", timeout=30))
        cycle.reason = await self.ended(cycle.session)

    async def docker_idle(self, cycle: Cycle) -> None:
        cycle.session = await self.start(extend=True, image=DOCKER_IMAGE)
        await self.start_inner_containers(cycle)
        assert cycle.terminal is not None
        await cycle.terminal.close()  # nobody watches it from now on
        cycle.terminal = None
        cycle.reason = await self.ended(cycle.session)

    async def start_inner_containers(self, cycle: Cycle, noted: bool = False) -> None:
        """At the cycle's prompt, start INNER_CONTAINERS (the shell's ``docker`` waits for the engine);
        with ``noted``, a failure is noted as the cycle's problem instead of raised."""

        async def started(terminal: Terminal) -> None:
            await terminal.expect("# ", timeout=30)
            output = await terminal.run(INNER_CONTAINERS, timeout=60)
            assert "inner-containers-up" in output, f"the inner containers did not start: {output[-500:]!r}"
            cycle.inner_up = time.monotonic() - cycle.started

        try:
            await self.on_terminal(cycle, started)
        except FAILURES as exc:
            if not noted:
                raise
            cycle.note(f"its inner containers did not start: {type(exc).__name__}: {exc}")

    @staticmethod
    async def inner_still_up(terminal: Terminal) -> None:
        """The two inner containers still run, and the page is still served on port 8080."""
        output = await terminal.run(INNER_STILL_UP, timeout=40)
        assert output.split()[:1] == ["2"] and "root:" in output, f"inner containers after the agent kill: {output!r}"

    # -- kill events --------------------------------------------------------------------------
    async def agent_kill(self) -> None:
        """Start a docker sandbox with inner containers, then a batch of sessions (one of them a
        docker sandbox's), and SIGKILL the agent right after the POSTs (mid-create)."""
        docker = Cycle("docker_adopted")
        self.cycles.append(docker)
        try:
            docker.session = await self.start(extend=True, image=DOCKER_IMAGE)
            await self.start_inner_containers(docker)
        except FAILURES as exc:
            docker.note(f"before the agent kill: {type(exc).__name__}: {exc}")
            await self.end_anyway(docker)
            docker.finished = time.monotonic()
        cycles = await self.batch("agent_killed", docker=True)
        self.agent_dying = True
        killed = time.monotonic()
        await self.kill("agent")
        await self.agent_answers()
        self.agent_down.append((killed, time.monotonic() + AFTER_AGENT_KILL))
        self.agent_dying = False
        adopted = [self.after_agent_kill(docker, self.inner_still_up)] if not docker.finished else []
        await asyncio.gather(*adopted, *(self.after_agent_kill(cycle) for cycle in cycles))

    async def after_agent_kill(self, cycle: Cycle, check: Step | None = None) -> None:
        """A session that lived on has a working terminal (where ``check`` passes, if given), and is
        deleted; one that did not is ended by the web tier (its viewer is told, 4410)."""
        try:
            await self.on_terminal(cycle, check or (lambda terminal: terminal.run("echo survived", timeout=40)))
        except websockets.ConnectionClosed:
            assert cycle.terminal is not None
            if cycle.terminal.ws.close_code != 4410:
                cycle.note(f"the terminal closed with {cycle.terminal.ws.close_code}: {cycle.terminal.events}")
        except FAILURES as exc:
            cycle.note(f"after the agent kill: {type(exc).__name__}: {exc}")
        if cycle.terminal is not None:
            await cycle.terminal.close()
        await self.end_anyway(cycle)
        cycle.finished = time.monotonic()

    async def worker_kill(self) -> None:
        """Delete a batch of sessions with a prompt (one of them a docker sandbox's with inner containers)
        and SIGKILL the worker right after (mid-destroy)."""
        cycles = await self.batch_with_prompts("worker_killed", docker=True)
        self.may_create.clear()
        try:
            await self.no_creation_in_flight()
            await asyncio.gather(*(self.delete_session(cycle.session) for cycle in cycles))
            await self.kill("worker")
        finally:
            self.may_create.set()
        await asyncio.gather(*(self.after_worker_kill(cycle) for cycle in cycles))

    async def redis_kill(self) -> None:
        """Sessions with a prompt live through a SIGKILL of Redis (no creation under way meanwhile)."""
        cycles = await self.batch_with_prompts("redis_killed")
        self.may_create.clear()
        try:
            await self.no_creation_in_flight()
            self.redis_dying = True
            killed = time.monotonic()
            await self.kill("redis")
            await self.redis_answers()
            self.redis_down.append((killed, time.monotonic() + AFTER_REDIS_KILL))
            self.redis_dying = False
        finally:
            self.may_create.set()
        await asyncio.gather(*(self.after_redis_kill(cycle) for cycle in cycles))

    async def after_redis_kill(self, cycle: Cycle) -> None:
        """The shell still answers (the page reconnects if its websocket dropped); then it is deleted."""
        try:
            await self.on_terminal(cycle, lambda terminal: terminal.run("echo survived", timeout=40))
            await self.delete_session(cycle.session)
            await self.on_terminal(cycle, lambda terminal: self.told(terminal, "deleted", timeout=30))
            cycle.reason = await self.ended(cycle.session)
        except FAILURES as exc:
            cycle.note(f"after the Redis kill: {type(exc).__name__}: {exc}")
            await self.end_anyway(cycle)
        if cycle.terminal is not None:
            await cycle.terminal.close()
        cycle.finished = time.monotonic()

    async def redis_answers(self, timeout: float = 30) -> None:
        """Wait until the stack's Redis answers PING again."""
        url = urlsplit(self.stack.env["PLAYGROUND_REDIS_URL"])
        await eventually_async(
            lambda: asyncio.to_thread(redis_answers, url.hostname or "127.0.0.1", url.port or 6379),
            "the restarted Redis answers PING",
            timeout,
        )

    async def beat_kill(self) -> None:
        """Sessions nobody opens, and beat SIGKILLed: the restarted beat's reaper ends them idle."""
        cycles = await self.batch("beat_killed")
        await self.kill("beat")
        reasons = await asyncio.gather(*(self.ended(cycle.session) for cycle in cycles), return_exceptions=True)
        for cycle, reason in zip(cycles, reasons, strict=True):
            if isinstance(reason, BaseException):
                cycle.note(f"after the beat kill: {type(reason).__name__}: {reason}")
                await self.end_anyway(cycle)
            else:
                cycle.reason = reason
            cycle.finished = time.monotonic()

    async def after_worker_kill(self, cycle: Cycle) -> None:
        assert cycle.terminal is not None
        try:
            await self.told(cycle.terminal, "deleted", timeout=30)
            cycle.reason = await self.ended(cycle.session)
        except FAILURES as exc:
            cycle.note(f"after the worker kill: {type(exc).__name__}: {exc}")
        await cycle.terminal.close()
        cycle.finished = time.monotonic()

    async def batch(self, kind: str, docker: bool = False) -> list[Cycle]:
        """KILL_BATCH cycles of ``kind`` with their sessions started at once; with ``docker``, the
        first is a docker sandbox's (of kind ``docker_<kind>``)."""
        cycles = [Cycle(f"docker_{kind}" if docker and n == 0 else kind) for n in range(KILL_BATCH)]
        self.cycles += cycles
        images = [DOCKER_IMAGE if cycle.docker else None for cycle in cycles]
        sessions = await asyncio.gather(*(self.start(extend=True, image=image) for image in images))
        for cycle, session in zip(cycles, sessions, strict=True):
            cycle.session = session
        return cycles

    async def batch_with_prompts(self, kind: str, docker: bool = False) -> list[Cycle]:
        """A batch of ``kind`` whose terminals are open at their first prompt; a docker sandbox's
        (with ``docker``) has its inner containers running."""
        cycles = await self.batch(kind, docker)
        terminals = await asyncio.gather(*(self.prompt(cycle.session) for cycle in cycles))
        for cycle, terminal in zip(cycles, terminals, strict=True):
            cycle.terminal = terminal
        await asyncio.gather(*(self.start_inner_containers(cycle, noted=True) for cycle in cycles if cycle.docker))
        return cycles

    async def kill(self, part: str) -> None:
        """SIGKILL a part of the stack and wait until the launcher has started it again."""
        self.kills.append((time.monotonic(), part))
        await asyncio.to_thread(self.stack.restart_part, part)

    async def agent_answers(self, timeout: float = 30) -> None:
        """Wait until the restarted agent answers ping."""
        problems = ["none yet"]

        async def pings() -> bool:
            try:
                await self.agent.request("ping")
                return True
            except AgentError as exc:
                problems.append(str(exc))
                return False

        await eventually_async(
            pings, "the restarted agent answers ping", timeout, explain=lambda: f"last problem: {problems[-1]}"
        )

    # -- one session --------------------------------------------------------------------------
    async def start(self, extend: bool, image: str | None = None) -> dict[str, Any]:
        """POST a session (of ``image``, else the default; once creations may go on), extended once if
        ``extend``. Like the page, try again after ``503 agent_unavailable`` while the agent is down
        (for up to 30 s)."""
        since = time.monotonic()
        posts = 0

        async def post() -> Response:
            nonlocal posts
            if posts:
                self.refused += 1  # the POST before this one was refused while the agent was down
            posts += 1
            return await self.post({"image": image} if image else {})

        def refused_while_agent_down(response: Response) -> bool:
            unavailable = response.status == 503 and response.json().get("error") == "agent_unavailable"
            return unavailable and self.agent_was_down_since(since)

        response = await eventually_async(
            post,
            "POST /api/sessions/ is not refused with 503 agent_unavailable (the agent is back)",
            30,
            0.5,  # the page's pause before it tries again
            until=lambda response: not refused_while_agent_down(response),
        )
        assert response.status == 201, f"POST answered {response.status}: {response.body[:300]!r}"
        session = response.json()
        if extend:
            extended = await asyncio.to_thread(
                self.stack.request, "POST", f"/api/sessions/{session['id']}/extend/", headers=auth(session)
            )
            assert extended.status == 200, f"extend answered {extended.status}: {extended.body[:300]!r}"
        return session

    async def post(self, body: dict[str, str]) -> Response:
        """POST /api/sessions/ once creations may go on; counted in ``posting`` while under way."""
        while not self.may_create.is_set():
            await self.may_create.wait()
        self.posting += 1  # no await since the check: a creation is either counted or waits
        try:
            return await asyncio.to_thread(self.stack.request, "POST", "/api/sessions/", body)
        finally:
            self.posting -= 1

    async def on_terminal(self, cycle: Cycle, step: Step, attempts: int = 10) -> None:
        """Run ``step`` on the cycle's terminal (opened if need be). Like the page, open it
        again when it closes with 4503 (the agent's stream dropped) while the agent was down."""
        for _ in range(attempts):
            if cycle.terminal is None:
                cycle.terminal = await Terminal.open(self.stack.terminal_url(cycle.session))
            try:
                await step(cycle.terminal)
                return
            except websockets.ConnectionClosed:
                agent_restart = cycle.terminal.ws.close_code == 4503 and self.agent_was_down_since(cycle.started)
                if not (agent_restart or self.redis_was_down_since(cycle.started)):
                    raise
            await cycle.terminal.close()
            cycle.terminal = None
            await asyncio.sleep(0.5)  # the page's pause before it reconnects
        raise AssertionError(f"the terminal closed with 4503 {attempts} times")

    async def prompt(self, session: dict[str, Any]) -> Terminal:
        terminal = await Terminal.open(self.stack.terminal_url(session))
        await terminal.expect("# ", timeout=30)
        return terminal

    async def told(self, terminal: Terminal, reason: str, timeout: float = 15) -> None:
        """The terminal gets the ``exit`` event with ``reason`` and is closed with 4410."""
        exit_event = await terminal.expect_event("exit", timeout=timeout)
        assert exit_event["reason"] == reason, exit_event
        code = await terminal.closed(timeout=10)
        assert code == 4410, f"closed with {code}"

    async def delete_session(self, session: dict[str, Any]) -> None:
        response = await asyncio.to_thread(
            self.stack.request, "DELETE", f"/api/sessions/{session['id']}/", headers=auth(session)
        )
        assert response.status == 204, f"DELETE answered {response.status}: {response.body[:300]!r}"

    async def shown(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as GET /api/sessions/<id>/ shows it. (The API, not the database: a root
        process opening the web user's SQLite database races with it over creating its WAL files.)"""
        response = await asyncio.to_thread(
            self.stack.request, "GET", f"/api/sessions/{session['id']}/", headers=auth(session)
        )
        assert response.status == 200, f"GET answered {response.status}: {response.body[:300]!r}"
        return response.json()

    async def ended(self, session: dict[str, Any], timeout: float = 90) -> str | None:
        """Wait until the session has ended (its sandboxes destroyed); its reason."""
        body = await eventually_async(
            lambda: self.shown(session),
            f"the end of session {session['id']}",
            timeout,
            0.3,
            until=lambda shown: shown["state"] == "ended",
        )
        return body["ended_reason"]

    # -- the whole host -----------------------------------------------------------------------
    async def no_creation_in_flight(self, timeout: float = 60) -> None:
        """Wait until no POST is under way and no instance of a cycle under way is waiting for
        or in provisioning."""

        async def in_flight() -> dict[str, int]:
            return {"posting": self.posting, "being created": await self.being_created() if not self.posting else 0}

        await eventually_async(
            in_flight, "no creation in flight", timeout, 0.1, until=lambda found: not any(found.values())
        )

    async def being_created(self) -> int:
        under_way = [cycle.session for cycle in self.cycles if cycle.session and not cycle.finished]
        bodies = await asyncio.gather(*(self.shown(session) for session in under_way))
        return sum(i["state"] in ("requested", "provisioning") for body in bodies for i in body["instances"])

    async def all_ended(self) -> None:
        """Check that every session the churn started has ended."""
        sessions = [cycle.session for cycle in self.cycles if cycle.session]
        for start in range(0, len(sessions), 4 * self.concurrency):
            batch = sessions[start : start + 4 * self.concurrency]
            await asyncio.gather(*(self.ended(session, timeout=60) for session in batch))

    async def settle(self, like: dict[str, list[str]] | None = None, timeout: float = 60) -> dict[str, list[str]]:
        return await settled_census(self.stack, like, timeout)


async def settled_census(
    stack: Stack, like: dict[str, list[str]] | None = None, timeout: float = 60
) -> dict[str, list[str]]:
    """The census once the warm pool is full and two looks a second apart agree (and, given
    ``like``, match its counts); after ``timeout`` the census as it is."""
    # A loop of its own, not tests.waiting.eventually: at the timeout this returns the census as
    # it is (the caller's report compares it with the one before and lists what differs) instead
    # of raising.
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    deadline = time.monotonic() + timeout
    last: dict[str, list[str]] = {}
    while True:
        listing = await agent.request("list")
        pool_full = listing["warm"].get("busybox", 0) == int(stack.env["PLAYGROUND_WARM_POOL"])
        now = await asyncio.to_thread(census, stack)
        steady = pool_full and not listing["sandboxes"] and counts(now) == counts(last)
        if (steady and (like is None or counts(now) == counts(like))) or time.monotonic() > deadline:
            return now
        last = now
        await asyncio.sleep(1)


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Session {session['key']}"}


def churn(total: int, concurrency: int = CONCURRENCY, **settings: str) -> Report:
    """Start a stack with SETTINGS (and ``settings`` over them), run ``total`` cycles, stop it."""
    with Stack.running(**{**SETTINGS, **settings}) as stack:
        return asyncio.run(Churn(stack, total, concurrency).run())
