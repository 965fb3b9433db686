"""The ``stats`` operation: what each of a few sandboxes uses now and which ports it listens on.

Memory and CPU come from the sandbox's cgroups (:func:`sandbox.host.cgroups.usage`), ports from
its network namespace (:class:`sandbox.network.listening.Listeners`: a netlink socket per
namespace, kept while the sandbox lives). A few small file reads and one netlink exchange per
sandbox, no process started: the web tier asks about once a second for each visitor's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.agent import requestfields
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Reply, Request
from sandbox.host import cgroups
from sandbox.network.listening import Listeners
from sandbox.runtime.runc import RuncRuntime


@dataclass(eq=False)
class Stats:
    """Answers ``stats`` for the sandboxes of ``registry``."""

    registry: Registry
    runtime: RuncRuntime
    listeners: Listeners = field(default_factory=Listeners)

    async def stats(self, request: Request) -> Reply:
        """``{"ids": [...]}`` -> ``{"sandboxes": {id: {"address", "memory_bytes",
        "memory_limit_bytes", "cpu_seconds", "ports"}}}``; ids of sandboxes that do not run here
        (unknown, being created or destroyed) are left out."""
        found = {}
        for sandbox_id in requestfields.sandbox_ids(request):
            sandbox = self.registry.sandboxes.get(sandbox_id)
            if sandbox is not None and sandbox.terminal is not None and sandbox_id not in self.registry.destroying:
                found[sandbox_id] = self.of(sandbox)
        self.listeners.keep_only({s.network.netns for s in self.registry.sandboxes.values() if s.network})
        return {"sandboxes": found}

    def of(self, sandbox: Sandbox) -> dict[str, Any]:
        """One sandbox's figures: zeros for what cannot be read (its cgroups gone), no ports once
        its first process has exited."""
        usage = cgroups.usage(self.runtime.cgroup_parent, sandbox.runtime_id) or cgroups.Usage(0, 0, 0.0)
        pid = self.runtime.init_pid(sandbox.runtime_id)
        ports = self.listeners.ports(sandbox.network.netns, pid) if sandbox.network and pid is not None else []
        return {
            "address": str(sandbox.network.address) if sandbox.network else None,
            "memory_bytes": usage.memory_bytes,
            "memory_limit_bytes": usage.memory_limit_bytes,
            "cpu_seconds": round(usage.cpu_seconds, 3),
            "ports": ports,
        }
