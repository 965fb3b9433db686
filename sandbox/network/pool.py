"""A pool of ready sandbox networks, so creating a sandbox never waits for ``ip`` and ``nft``.

A network (see :mod:`sandbox.network.namespaces`) takes about 20 ms of subprocesses to build: a netns, a
veth pair on the bridge, an address, sysctls, and a sysfs mounted from inside the netns (runc
cannot mount one for a sandbox that has its own user namespace but joins a host-owned netns).
The pool builds them ahead of time, in the background, and ``take`` hands one out in a few
microseconds.

Layout: each ready network has a directory ``<pool dir>/<network id>`` holding ``sys``, the
mounted sysfs of its netns. ``take`` renames that directory into the sandbox's directory, so
the network belongs to the sandbox from then on: the runtime's destroy unmounts the sysfs with
the sandbox's other mounts, and ``release`` removes the netns, the veth and the address. A
network is never reused after a sandbox had it. What is in the pool directory is exactly the
pool; anything of this agent's network prefix that is not in it belongs to a sandbox (or is a
leftover, which ``start`` removes).
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

from sandbox.host import mounts
from sandbox.network.layout import NetworkError
from sandbox.network.namespaces import SandboxNetwork

log = logging.getLogger("sandbox.network.pool")

REFILL_BACKOFF = 2.0  # seconds to wait after a failed build before trying again


@dataclass(frozen=True)
class Lease:
    """One sandbox network: its id (the nft element's comment), netns, address and sysfs."""

    network_id: str
    netns: Path
    address: ipaddress.IPv4Address
    directory: Path  # holds ``sys``; moves into the sandbox's directory when taken

    @property
    def sysfs(self) -> Path:
        return self.directory / "sys"

    def moved_to(self, directory: Path) -> Lease:
        """This lease after ``os.rename(self.directory, directory)``."""
        return Lease(self.network_id, self.netns, self.address, directory)


class NetworkPool:
    """Keeps ``size`` networks of ``network`` ready under ``directory`` (root only)."""

    def __init__(self, network: SandboxNetwork, directory: Path, size: int) -> None:
        self.network = network
        self.directory = directory
        self.size = size
        self.ready: list[Lease] = []
        self.building: set[str] = set()
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
        """A ready network (built now if the pool is empty); the caller must ``release`` it."""
        self._wanted.set()
        if self.ready:
            return self.ready.pop(0)
        if self.size:
            log.info("network pool empty: building a network on demand (raise PLAYGROUND_NETWORK_POOL)")
        return await self._build()

    async def release(self, lease: Lease) -> None:
        """Remove the network: sysfs mount, directory, veth, netns and address. Safe to repeat."""
        mounts.unmount(lease.sysfs)
        shutil.rmtree(lease.directory, ignore_errors=True)
        await self.network.destroy(lease.network_id)

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
        """Remove every network of this prefix that is neither ``in_use`` nor in the pool; returns them."""
        keep = in_use | {lease.network_id for lease in self.ready} | self.building
        removed = []
        for entry in _entries(self.directory):
            if entry.name not in keep:
                mounts.unmount(entry / "sys")
                shutil.rmtree(entry, ignore_errors=True)
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
        netns = await self.network.create(network_id)
        try:
            (directory / "sys").mkdir(mode=0o755, parents=True)
            os.chmod(directory, 0o711)
            await self.network.mount_sysfs(network_id, directory / "sys")
            address = self.network.assigned[network_id]
        except BaseException:
            lease = Lease(network_id, netns, ipaddress.IPv4Address(0), directory)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(lease))
            raise
        return Lease(network_id, netns, address, directory)

    def _remove_directories(self) -> None:
        for entry in _entries(self.directory):
            mounts.unmount(entry / "sys")
            shutil.rmtree(entry, ignore_errors=True)


def _entries(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []
