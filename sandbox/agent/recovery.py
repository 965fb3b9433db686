"""Keeping the host and the agent's bookkeeping in agreement: adopting at start what an earlier
agent left running, and reconciling periodically (and on request) afterwards.

Adoption (:meth:`Recovery.adopt`) takes over each sandbox that has a record, is known to runc
and whose terminal the keeper holds; everything else an earlier agent left is removed.
Reconciliation (:meth:`Recovery.reconcile`) removes whatever exists on the host but belongs to
no live or pooled sandbox, and makes the keeper hold exactly the open terminals.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sandbox.agent.groups import Groups
from sandbox.agent.keeping import KeptTerminals
from sandbox.agent.records import Sandbox, SandboxRecord, read_record
from sandbox.agent.registry import Registry
from sandbox.agent.tabs import Tabs
from sandbox.agent.warmpool import WarmPool
from sandbox.images.store import ImageStore
from sandbox.keeper.client import KeeperError
from sandbox.network.pool import NetworkPool
from sandbox.runtime.runc import RuncRuntime, SandboxError

log = logging.getLogger("sandbox.agent")


@dataclass(eq=False)
class Recovery:
    """Adopts an earlier agent's sandboxes and reconciles the host with ``registry`` and ``warm``."""

    registry: Registry
    warm: WarmPool[Sandbox]
    runtime: RuncRuntime
    networks: NetworkPool
    images: ImageStore
    kept: KeptTerminals
    tabs: Tabs
    groups: Groups
    _reconciler: asyncio.Task[None] | None = field(default=None, init=False)

    async def adopt(self) -> None:
        """Take over the sandboxes an earlier agent left running; remove every other trace.

        A sandbox is adopted when its directory has a record (written once a visitor's sandbox
        was fully created), runc knows it, and the keeper holds its terminal; pooled sandboxes
        and half-created or half-destroyed ones are removed. The keeper lets go of the rest.
        """
        try:
            kept = self.kept.keys()
        except KeeperError as exc:
            log.warning("%s; sandboxes of an earlier agent cannot be adopted", exc)
            kept = set()
        for runtime_id in sorted(self.runtime.known_ids()):
            adoptable = self._adoptable(runtime_id) if runtime_id in kept else None
            if adoptable is not None:
                sandbox, record = adoptable
                if sandbox.terminal is not None:
                    self.tabs.recordings.start(sandbox, 0, sandbox.terminal, fresh=False)
                await self.tabs.adopt(sandbox, record.get("tabs", []))
                sandbox.next_tab = int(record.get("next_tab", 1))
                self.registry.sandboxes[sandbox.sandbox_id] = sandbox
                log.info(
                    "adopted sandbox %s (%s, image %s) from an earlier agent",
                    sandbox.sandbox_id,
                    sandbox.hostname,
                    sandbox.image,
                )
                continue
            log.info("removing leftover sandbox %s from an earlier run", runtime_id)
            await self.runtime.destroy(runtime_id)
        adopted = {key for s in self.registry.sandboxes.values() for key in s.kept_terminals()}
        for key in kept - adopted:
            self.kept.forget(key)

    def _adoptable(self, runtime_id: str) -> tuple[Sandbox, SandboxRecord] | None:
        """The sandbox recorded in ``runtime_id``'s directory with its terminal from the keeper, and
        its record; or None."""
        directory = self.runtime.sandbox_dir(runtime_id)
        try:
            record = read_record(directory)
            if not (self.runtime.runc_root / runtime_id).is_dir():
                return None
        except (OSError, ValueError) as exc:
            log.info("sandbox %s cannot be adopted: %s", runtime_id, exc)
            return None
        terminal = self.kept.take(runtime_id)
        if terminal is None:
            return None
        sandbox = Sandbox.from_record(record, terminal, runtime_id, directory)
        # The kernel's record of its range first (an older agent's sandbox has none: it shares the base).
        sandbox.id_range = self.runtime.ranges_held().get(runtime_id, sandbox.id_range)
        return sandbox, record

    async def remove_leftovers(self) -> None:
        """Destroy every sandbox runc still knows (on shutdown, after the tracked ones are gone)."""
        for sandbox_id in sorted(self.runtime.known_ids()):
            log.info("removing leftover sandbox %s from an earlier run", sandbox_id)
            await self.runtime.destroy(sandbox_id)

    async def reconcile(self) -> list[str]:
        """Remove whatever exists on the host but belongs to no sandbox this agent tracks.

        Compares runc state, sandbox directories and cgroups (by runtime id), and network
        namespaces, veths, addresses and pooled sysfs mounts (by network id) with the live and
        pooled sandboxes, and destroys the rest: the remains of a crash half-way through a
        create or a destroy. Also deletes the workspaces of image builds, imports and removals
        whose process is gone. Sets the groups' peer pairs again (see :mod:`sandbox.agent.groups`).
        Returns what it removed. Safe to run at any time.
        """
        removed = []
        for runtime_id in sorted(self.runtime.known_ids()):
            tracked = {s.runtime_id for s in self.registry.sandboxes.values()} | self.warm.runtime_ids()
            if runtime_id in tracked:
                continue
            log.warning("reconcile: removing sandbox remains %s that no session or pool owns", runtime_id)
            try:
                await self.runtime.destroy(runtime_id)
                removed.append(runtime_id)
            except SandboxError as exc:
                log.error("reconcile: could not remove %s yet: %s", runtime_id, exc)
        pooled = [s for ready in self.warm.ready.values() for s in ready]
        in_use = {s.network.network_id for s in [*self.registry.sandboxes.values(), *pooled] if s.network}
        removed += await self.networks.reconcile(in_use)
        removed += [str(p) for p in await asyncio.to_thread(self.images.remove_garbage)]
        self.kept.sync([*self.registry.sandboxes.values(), *pooled])  # as they are now, after the awaits
        await self.groups.update_pairs()
        return removed

    def start_reconciling(self, interval: int) -> None:
        """Reconcile every ``interval`` seconds from now on, until :meth:`stop_reconciling`."""
        self._reconciler = asyncio.create_task(self._reconcile_forever(interval), name="reconcile")

    def stop_reconciling(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()

    async def _reconcile_forever(self, interval: int) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciliation failed; trying again in %d s", interval)
