"""A pool of places ready for sandboxes, so creating one never waits for namespaces, ``ip`` or ``nft``.

A place is what a sandbox needs before runc can start it, all made by subprocesses (about 30 ms):
an id range (:mod:`sandbox.host.idranges`), a user namespace owned by that range's first id and
a network namespace owned by it (:mod:`sandbox.host.userns`), the network inside it (a veth pair
on the bridge, an address, sysctls: :mod:`sandbox.network.namespaces`), and the user namespace
that shifts image layers into the range. The pool builds places ahead of time, in the
background, and ``take`` hands one out in a few microseconds.

Layout: each ready place is a directory ``<pool dir>/<network id>`` holding ``layer`` (the small
tmpfs that records its range), ``userns`` and ``idmap`` (the pinned user namespaces); its network
namespace is pinned at ``/run/netns/<prefix>-<hash>``. The runtime renames the directory to
become the sandbox's own, so the place belongs to the sandbox from then on: the runtime's destroy
unmounts what is in it with the sandbox's other mounts (which frees the range), and ``release``
removes the netns, the veth and the address. A place is never reused after a sandbox had it.
What is in the pool directory is exactly the pool; anything of this agent's network prefix that
is not in it belongs to a sandbox (or is a leftover, which ``start`` removes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from sandbox.host import idranges, mounts, userns
from sandbox.host.userns import UserLimits
from sandbox.network.layout import NetworkError
from sandbox.network.namespaces import SandboxNetwork

log = logging.getLogger("sandbox.network.pool")

REFILL_BACKOFF = 2.0  # seconds to wait after a failed build before trying again
# A place taken is replaced this much later, not at once: building one is about 30 ms of
# processes, which would otherwise compete on the host's CPUs with the start of the very sandbox
# that took it (the warm pool waits the same way, sandbox.agent.warmpool.REFILL_DELAY).
REFILL_DELAY = 0.25


USERNS, IDMAP = "userns", "idmap"  # the pinned user namespaces in a place's directory


@dataclass(frozen=True)
class Lease:
    """One place for a sandbox: its network's id (the nft element's comment), netns and address,
    its directory (which becomes the sandbox's) and the first host id of its range."""

    network_id: str
    netns: Path
    address: ipaddress.IPv4Address
    directory: Path
    ids: int

    @property
    def userns(self) -> Path:
        """The pinned user namespace, owned by ``ids``, that owns ``netns``."""
        return self.directory / USERNS

    @property
    def idmap(self) -> Path:
        """The pinned user namespace mapping the image store's range onto ``ids`` (for idmapped mounts)."""
        return self.directory / IDMAP

    def moved_to(self, directory: Path) -> Lease:
        """This lease after ``os.rename(self.directory, directory)``."""
        return Lease(self.network_id, self.netns, self.address, directory, self.ids)


class NetworkPool:
    """Keeps ``size`` places of ``network`` ready under ``directory`` (root only), each in one of
    ``ranges``'s id ranges and bounded by ``limits``."""

    def __init__(
        self, network: SandboxNetwork, directory: Path, size: int, ranges: idranges.Ranges, limits: UserLimits
    ) -> None:
        self.network = network
        self.directory = directory
        self.size = size
        self.ranges = ranges
        self.limits = limits
        self.ready: list[Lease] = []
        self.building: set[str] = set()
        # Network ids handed out by ``take`` and not yet released: a sandbox's, or one still being
        # started (a warm sandbox waits seconds for its ready file before any registry names it).
        self.taken: set[str] = set()
        self._wanted = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None

    async def start(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Set up the host (bridge, walls), remove every network of this prefix but ``keep``, start filling.

        Call it at agent start, after leftovers are gone: every existing network of the prefix
        that no adopted sandbox uses (``keep``, network ids) is then a leftover.
        """
        await self.network.setup_host()
        self._remove_directories()
        await self.network.reap(keep=keep)
        self.directory.mkdir(mode=0o711, parents=True, exist_ok=True)
        self._filler = asyncio.create_task(self._fill(), name="network-pool")

    async def take(self) -> Lease:
        """A ready place (built now if the pool is empty); the caller must ``release`` it. Its
        replacement is built REFILL_DELAY later."""
        asyncio.get_running_loop().call_later(REFILL_DELAY, self._wanted.set)
        if self.ready:
            lease = self.ready.pop(0)
        else:
            if self.size:
                log.info("network pool empty: building a network on demand (raise PLAYGROUND_NETWORK_POOL)")
            lease = await self._build()
        self.taken.add(lease.network_id)
        return lease

    async def release(self, lease: Lease) -> None:
        """Remove the place: what is mounted in its directory (which frees its range), the directory,
        then the veth, netns and address. Safe to repeat. Call it only once no process of a
        sandbox runs in it (after the runtime's destroy)."""
        try:
            _remove_directory(lease.directory)
            await self.network.destroy(lease.network_id)
        finally:  # what a failed release left is the reconciliation's to remove
            self.taken.discard(lease.network_id)

    async def close(self) -> None:
        """Stop filling, release the ready networks, and remove the bridge and the walls."""
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
        while self.ready:
            await self.release(self.ready.pop())
        self._remove_directories()
        await self.network.teardown_host()

    async def reconcile(self, in_use: set[str]) -> list[str]:
        """Remove every network of this prefix that is neither ``in_use``, in the pool, nor taken
        from it and not yet released; returns them."""
        keep = in_use | {lease.network_id for lease in self.ready} | self.building | self.taken
        removed = []
        for entry in _entries(self.directory):
            if entry.name not in keep:
                _remove_directory(entry)
                removed.append(str(entry))
        return removed + await self.network.reap(keep)

    def ready_ids(self) -> list[str]:
        """Ids of the networks waiting in the pool, from its directory (for tests counting leftovers)."""
        return sorted(p.name for p in _entries(self.directory))

    async def _fill(self) -> None:
        while True:
            while len(self.ready) < self.size:
                try:
                    self.ready.append(await self._build())
                except (NetworkError, OSError) as exc:
                    log.error("could not build a network for the pool (retrying in %.0f s): %s", REFILL_BACKOFF, exc)
                    await asyncio.sleep(REFILL_BACKOFF)
            self._wanted.clear()
            await self._wanted.wait()

    async def _build(self) -> Lease:
        network_id = "n" + secrets.token_hex(8)
        self.building.add(network_id)
        try:
            return await self._build_one(network_id)
        finally:
            self.building.discard(network_id)

    async def _build_one(self, network_id: str) -> Lease:
        directory = self.directory / network_id
        directory.mkdir(mode=0o711)
        os.chmod(directory, 0o711)  # search-only for others: runc's init walks to the bundle
        lease = Lease(network_id, self.network.config.netns_path(network_id), ipaddress.IPv4Address(0), directory, 0)
        try:
            try:
                ids = self.ranges.claim(directory)
            except idranges.RangesExhausted as exc:
                raise NetworkError(str(exc)) from None

            async def make_netns(path: Path) -> None:
                await userns.make_owned(ids, directory / USERNS, path, self.limits)

            await self.network.create(network_id, make_netns)
            await asyncio.to_thread(userns.pin_idmap, self.ranges.base, ids, directory / IDMAP)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(lease))
            raise
        return Lease(network_id, lease.netns, self.network.assigned[network_id], directory, ids)

    def _remove_directories(self) -> None:
        for entry in _entries(self.directory):
            _remove_directory(entry)


def _remove_directory(directory: Path) -> None:
    """Unmount what is mounted in a place's directory (deepest first), then remove it."""
    for point in mounts.mounts_under(directory):
        mounts.unmount(point)
    shutil.rmtree(directory, ignore_errors=True)


def _entries(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []
