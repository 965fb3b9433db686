"""What ``/metrics`` shows: the processes' own counters (:mod:`.instruments`) and the state a scrape
computes, from the database (sessions and nodes by state, the sandbox hosts' records) and from each
sandbox host's agent: this machine's, labelled with its hostname, and every sandbox host of
``manage.py hosts``, labelled with its name (docs/hosts.md).

A scrape gathers a :class:`Snapshot` (three queries, and four requests to each agent, all agents at
once, each request bounded by AGENT_TIMEOUT so a hung agent cannot hang the scrape), then renders it
with the processes' values. Imports prometheus_client, playground.sandboxes, playground.hosts,
playground.config and sandbox.wire.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from playground.hosts.models import SandboxHost
from playground.sandboxes.agentclient import client
from playground.sandboxes.models import Instance, Session
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError

AGENT_TIMEOUT = 2.0  # seconds one agent request of a scrape may take; beyond it the agent counts as down
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")


@dataclass
class HostState:
    """A sandbox host as its agent reports it (its ``list``, ``warm``, ``stats`` and ``images`` ops)."""

    sandboxes: int  # visitors' sandboxes
    pooled: int  # ready in the warm pool
    limit: int  # PLAYGROUND_HOST_MAX_SANDBOXES
    room: int  # free slots, pooled sandboxes counted as taken
    memory_used: int  # bytes charged to the visitors' sandboxes
    memory_committed: int  # bytes of their memory limits
    cpus_committed: float  # CPUs of their quotas
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU time so far, by sandbox id


@dataclass
class Snapshot:
    """What one scrape found. ``hosts``: each sandbox host's figures by its name (this machine's by its
    hostname), None for one whose agent did not answer; ``states``: each one's state as the site
    records it (active, draining or lost; this machine's is always active)."""

    sessions: dict[str, int]
    instances: dict[str, int]
    hosts: dict[str, HostState | None]
    states: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@sync_to_async
def _counts() -> tuple[dict[str, int], dict[str, int]]:
    """Sessions and instances by state (every state named, 0 when none)."""
    found = []
    for model, states in ((Session, Session.State.values), (Instance, Instance.State.values)):
        rows = model.objects.order_by().values_list("state").annotate(n=Count("pk"))  # type: ignore[attr-defined]
        found.append({**dict.fromkeys(states, 0), **dict(rows)})
    return found[0], found[1]


@sync_to_async
def _sandbox_hosts() -> list[SandboxHost]:
    return list(SandboxHost.objects.all())


async def host_state(agent: AgentClient) -> HostState | None:
    """The figures of the host whose agent ``agent`` is; None when it does not answer (down,
    restarting, hung, unreachable)."""

    async def ask(op: str, **fields: Any) -> dict[str, Any]:
        return await asyncio.wait_for(agent.request(op, **fields), AGENT_TIMEOUT)

    try:
        listed, warm, images = await asyncio.gather(ask("list"), ask("warm"), ask("images"))
        ids = [s["id"] for s in listed["sandboxes"]][:1000]  # the stats op's own bound
        stats = (await ask("stats", ids=ids))["sandboxes"] if ids else {}
    except (AgentError, TimeoutError):
        return None
    cfg = settings.PLAYGROUND
    recommended = {d.get("name"): d.get("quotas") for d in images.get("details", [])}
    cpus = sum(cfg.quotas_for(s["image"], recommended.get(s["image"])).cpus for s in listed["sandboxes"])
    return HostState(
        sandboxes=len(listed["sandboxes"]),
        pooled=sum(warm["ready"].values()),
        limit=warm["limit"],
        room=warm["room"],
        memory_used=sum(s["memory_bytes"] for s in stats.values()),
        memory_committed=sum(s["memory_limit_bytes"] for s in stats.values()),
        cpus_committed=cpus,
        cpu_seconds={i: s["cpu_seconds"] for i, s in stats.items()},
    )


def _agent_of(record: SandboxHost | None) -> AgentClient | None:
    """The agent of ``record`` (None: this machine's); None if the site cannot even dial it (its
    certificate unreadable, its address bad): it counts as not answering."""
    try:
        return client(record)
    except AgentError:
        return None


async def _state_of(agent: AgentClient | None) -> HostState | None:
    return None if agent is None else await host_state(agent)


async def gather() -> Snapshot:
    """The database's and every agent's state for one scrape."""
    (sessions, instances), records = await asyncio.gather(_counts(), _sandbox_hosts())
    here = socket.gethostname()
    agents = {here: _agent_of(None)} | {r.name: _agent_of(r) for r in records}
    found = await asyncio.gather(*(_state_of(agent) for agent in agents.values()))
    states = {here: SandboxHost.State.ACTIVE.value} | {r.name: r.state for r in records}
    return Snapshot(sessions, instances, dict(zip(agents, found, strict=True)), states)


class CpuRate:
    """CPU cores the sandboxes used between two scrapes: the CPU time each sandbox present in both
    gained, over the time between them (the agent reports each sandbox's total, which a sandbox's
    end would make fall)."""

    def __init__(self) -> None:
        self.last: tuple[float, dict[str, float]] | None = None

    def cores(self, now: float, seconds: dict[str, float]) -> float | None:
        """The rate since the last call; None for the first call."""
        last, self.last = self.last, (now, seconds)
        if last is None or now <= last[0]:
            return None
        gained = sum(max(0.0, used - last[1][i]) for i, used in seconds.items() if i in last[1])
        return gained / (now - last[0])


CPU_RATES: dict[str, CpuRate] = {}  # by host name


class SnapshotCollector:
    """Renders a :class:`Snapshot` (a prometheus_client custom collector)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, what, counts in (
            ("playground_sessions", "Sessions by state.", snap.sessions),
            ("playground_nodes", "Nodes (instances) by state.", snap.instances),
        ):
            family = GaugeMetricFamily(name, what, labels=["state"])
            for state, n in sorted(counts.items()):
                family.add_metric([state], n)
            yield family
        up = GaugeMetricFamily(
            "playground_agent_up", "1 when the sandbox host's agent answered this scrape, else 0.", labels=["host"]
        )
        for name, host in sorted(snap.hosts.items()):
            up.add_metric([name], 0 if host is None else 1)
        yield up
        states = GaugeMetricFamily(
            "playground_host_state",
            "1 for the sandbox host's state as the site records it (active, draining, lost), else 0.",
            labels=["host", "state"],
        )
        for name, state in sorted(snap.states.items()):
            for each in SandboxHost.State.values:
                states.add_metric([name, each], 1 if each == state else 0)
        yield states
        yield from self.host_metrics()

    def gauge(self, name: str, what: str, value: Callable[[str, HostState], float | None]) -> GaugeMetricFamily:
        """A gauge with a sample (label ``host``) per host whose agent answered: ``value`` of the
        host's name and figures, no sample where it is None."""
        family = GaugeMetricFamily(name, what, labels=["host"])
        for host, figures in sorted(self.snapshot.hosts.items()):
            if figures is not None and (figure := value(host, figures)) is not None:
                family.add_metric([host], figure)
        return family

    def host_metrics(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "playground_host_sandboxes", "Sandboxes on the host: session or pooled.", labels=["host", "kind"]
        )
        for name, host in sorted(self.snapshot.hosts.items()):
            if host is not None:
                family.add_metric([name, "session"], host.sandboxes)
                family.add_metric([name, "pooled"], host.pooled)
        yield family
        yield self.gauge(
            "playground_host_sandboxes_limit",
            "The host's maximum of sandboxes (PLAYGROUND_HOST_MAX_SANDBOXES).",
            lambda _, host: host.limit,
        )
        yield self.gauge(
            "playground_host_headroom_sandboxes",
            "Free sandbox slots on the host (pooled ones count as taken).",
            lambda _, host: host.room,
        )
        yield self.gauge(
            "playground_host_memory_used_bytes",
            "Memory charged to the sessions' sandboxes.",
            lambda _, host: host.memory_used,
        )
        yield self.gauge(
            "playground_host_memory_committed_bytes",
            "The sum of the sessions' sandboxes' memory limits.",
            lambda _, host: host.memory_committed,
        )
        yield self.gauge(
            "playground_host_cpus_committed",
            "The sum of the sessions' sandboxes' CPU quotas, in CPUs.",
            lambda _, host: host.cpus_committed,
        )
        yield self.gauge(
            "playground_host_cpu_used_cores",
            "CPUs the sessions' sandboxes used since the previous scrape (none at the first).",
            lambda name, host: CPU_RATES.setdefault(name, CpuRate()).cores(self.snapshot.at, host.cpu_seconds),
        )


class _Processes:
    """The processes' own values: added up from PROMETHEUS_MULTIPROC_DIR, or this process's alone."""

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            yield from REGISTRY.collect()
            return
        forget_dead_processes(Path(directory))
        yield from MultiProcessCollector(None, path=directory).collect()  # type: ignore[arg-type]


def forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges (open terminals, worker processes) of processes that are gone, which a
    killed process could not do itself; their counters stay (what they counted happened)."""
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.fullmatch(path.name)
        if match and not Path(f"/proc/{match[1]}").exists():
            mark_process_dead(int(match[1]), str(directory))


def exposition(snapshot: Snapshot) -> bytes:
    """The text format of every metric: the processes' values and ``snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Processes())  # type: ignore[arg-type]
    registry.register(SnapshotCollector(snapshot))  # type: ignore[arg-type]
    return generate_latest(registry)
