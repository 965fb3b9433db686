"""Groups of sandboxes on a private network (a session's nodes): who reaches whom, and who is called what.

A sandbox created with a ``group`` (the session's id) is a member of it from the moment it runs
until its destruction starts. Members reach each other on every port and protocol: the nft set
``session_peers`` holds every (source . destination) pair of two members of one group (see
:mod:`sandbox.network.rules`); every other sandbox, the host and the rest stay walled. Each
member's /etc/hosts names every member (its hostname -> its address), rewritten in place when a
member joins or leaves (:func:`sandbox.runtime.layers.rewrite_hosts`).

Both are derived from the agent's sandboxes (their group is in their record, so an agent restart
adopts it), never kept apart from them: an update recomputes the whole set from the members of
every group, so it can be repeated (reconciliation sets the pairs again) and cannot drift. A leaving member's
pairs go before its address is released, so an address handed out again never inherits them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.host.idranges import LAYER
from sandbox.network.layout import NetworkError
from sandbox.network.namespaces import SandboxNetwork
from sandbox.network.rules import Pair, peer_pairs
from sandbox.runtime import layers
from sandbox.runtime.runc import RuncRuntime
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.agent")


@dataclass(eq=False)
class Groups:
    """Keeps ``network``'s peer pairs and the members' hosts files in line with ``registry``."""

    registry: Registry
    network: SandboxNetwork
    runtime: RuncRuntime
    hosts: tuple[tuple[str, str], ...] = ()  # (address, name) every member's /etc/hosts has too: the gateway's name

    def members(self, group: str) -> list[Sandbox]:
        """The running members of ``group`` (not those being destroyed), oldest first."""
        found = [s for s in self.registry.sandboxes.values() if s.group == group and self._running(s)]
        return sorted(found, key=lambda s: (s.created, s.hostname))

    def pairs(self) -> list[Pair]:
        """The ``session_peers`` pairs of every group's running members."""
        groups: dict[str, list[Sandbox]] = {}
        for sandbox in self.registry.sandboxes.values():
            if sandbox.group is not None and self._running(sandbox):
                groups.setdefault(sandbox.group, []).append(sandbox)
        return peer_pairs([s.network.address for s in members if s.network] for members in groups.values())

    async def joined(self, sandbox: Sandbox) -> None:
        """``sandbox`` runs now: let its group's members reach it and name it. Failures are logged
        (the next reconciliation tries again): the sandbox runs, unreachable by its peers until then."""
        if sandbox.group is None:
            return
        try:
            await self.update(sandbox.group)
        except NetworkError as exc:
            log.error(
                "sandbox %s joins group %s at the next reconciliation: %s", sandbox.sandbox_id, sandbox.group, exc
            )

    async def leaving(self, sandbox: Sandbox) -> None:
        """``sandbox`` is being destroyed (the registry says so): take its pairs away before its
        address is released, and its name from its peers' hosts. AgentError ``destroy_failed``
        if the pairs cannot be updated (its address must not be released with them)."""
        if sandbox.group is None:
            return
        try:
            await self.update(sandbox.group)
        except NetworkError as exc:
            raise AgentError("destroy_failed", f"removing {sandbox.sandbox_id} from its group failed: {exc}") from None

    async def update(self, group: str) -> None:
        """Set the pairs of every group, then write the hosts file of each member of ``group``."""
        await self.network.set_peers(self.pairs())
        self.write_hosts(group)

    async def update_pairs(self) -> None:
        """Set the pairs again (each reconciliation: the hosts files, which a visitor may have
        edited, are left as they are). NetworkError if nft fails."""
        await self.network.set_peers(self.pairs())

    async def update_all(self) -> None:
        """Set the pairs and every member's hosts file (at agent start). NetworkError if nft fails."""
        await self.update_pairs()
        for group in sorted({s.group for s in self.registry.sandboxes.values() if s.group is not None}):
            self.write_hosts(group)

    def write_hosts(self, group: str) -> None:
        """Rewrite the /etc/hosts of every member of ``group`` to name them all; failures are logged."""
        members = self.members(group)
        text = layers.hosts_text(((str(s.network.address), s.hostname) for s in members if s.network), self.hosts)
        for sandbox in members:
            layer = self.runtime.sandbox_dir(sandbox.runtime_id) / LAYER
            try:
                layers.rewrite_hosts(layer, text)
            except (OSError, ValueError) as exc:
                log.warning("could not write the hosts file of sandbox %s: %s", sandbox.sandbox_id, exc)

    def _running(self, sandbox: Sandbox) -> bool:
        return (
            sandbox.network is not None
            and sandbox.terminal is not None
            and sandbox.sandbox_id not in self.registry.destroying
        )
