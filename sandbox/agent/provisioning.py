"""Bringing one sandbox up on this host and taking it down: its network, its runc container,
its first terminal and the keeper's copy of it.

:meth:`Provisioner.start` and :meth:`Provisioner.remove` act on a :class:`Sandbox` alone; which
sandboxes exist, and whether there is room for one, is decided by their callers
(:mod:`sandbox.agent.sandboxes`, :mod:`sandbox.agent.capacity`). Failures raise AgentError
(``create_failed``, ``destroy_failed``) saying what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sandbox.agent.keeping import KeptTerminals
from sandbox.agent.records import Sandbox, write_record
from sandbox.agent.tabs import Tabs
from sandbox.agent.warmpool import WARM_HOSTNAME
from sandbox.host import abis
from sandbox.host.lxcfs import Lxcfs
from sandbox.images.store import Image, ImageStore
from sandbox.network.namespaces import NetworkError
from sandbox.network.pool import NetworkPool
from sandbox.pty.terminal import Terminal
from sandbox.runtime.bundle import DOCKER_PROFILE, SandboxSpec
from sandbox.runtime.layers import REGISTRY_HOST
from sandbox.runtime.runc import RuncRuntime, SandboxError
from sandbox.settings import Network, Settings
from sandbox.wire.protocol import AgentError
from sandbox.wire.replay import ReplayBuffer

log = logging.getLogger("sandbox.agent")

READY_POLL = 0.05  # seconds between looks for a pooled sandbox's ready file


def registry_hosts(cfg: Settings) -> tuple[tuple[str, str], ...]:
    """The /etc/hosts lines every sandbox has besides its group's: the gateway named ``registry``."""
    return ((cfg.registry_mirror.rsplit(":", 1)[0], REGISTRY_HOST),)


def resolv_conf(network: Network) -> str:
    """The /etc/resolv.conf of every sandbox: the configured nameservers, or none without egress."""
    if network.egress:
        return "".join(f"nameserver {a}\n" for a in network.dns)
    return "# No outbound network on this playground (PLAYGROUND_EGRESS is off).\n"


@dataclass(eq=False)
class Provisioner:
    """Starts and removes sandboxes on the host."""

    cfg: Settings
    runtime: RuncRuntime
    networks: NetworkPool
    images: ImageStore
    kept: KeptTerminals
    tabs: Tabs
    lxcfs: Lxcfs | None = None  # its files go into new sandboxes while it answers

    async def start(self, sandbox: Sandbox, image: Image) -> None:
        """Start ``sandbox`` (its runtime id, hostname) from ``image``: network, id range, runc, terminal."""
        if image.profile == DOCKER_PROFILE and not self.cfg.docker_profile:
            raise AgentError(
                "create_failed",
                f"image {image.name} runs a Docker engine inside (the docker profile), which this host has turned "
                "off (PLAYGROUND_DOCKER_PROFILE=false); choose another image",
            )
        quotas = self.cfg.quotas_for(image.name, image.quotas)
        spec = SandboxSpec(
            sandbox.runtime_id,
            sandbox.hostname,
            image.cmd,
            # The registry mirror's front on the gateway: the docker image's init gives it to
            # dockerd as its --registry-mirror (docs/registry.md).
            [*image.env, f"PLAYGROUND_REGISTRY_MIRROR={self.cfg.registry_mirror}"],
            image.workdir,
            quotas.memory_bytes,
            quotas.cpus,
            quotas.pids,
            quotas.disk_bytes,
            ptys=self.cfg.sandbox_ptys,
            inodes=self.cfg.sandbox_inodes,
            nofile=self.cfg.sandbox_nofile,
            profile=image.profile,
            x32=abis.runs_x32(),  # asked once, at the agent's start
            lxcfs=await self.lxcfs.view() if self.lxcfs else None,
            # The gateway as ``registry``: the sessions' push registry, through the same front.
            hosts=registry_hosts(self.cfg),
        )
        try:
            sandbox.network = await self.networks.take()
            started = await self.runtime.create(spec, image, sandbox.network, resolv_conf(self.cfg.network))
        except (SandboxError, NetworkError, OSError) as exc:
            with contextlib.suppress(AgentError):
                await self.release_network(sandbox)
            log.error("creating sandbox %s failed: %s", sandbox.runtime_id, exc)
            raise AgentError("create_failed", str(exc)) from None
        sandbox.id_range = started.ids
        sandbox.terminal = Terminal(started.terminal, ReplayBuffer(self.cfg.replay_bytes))
        self.kept.keep_first(sandbox)

    async def build_warm(self, image_name: str, runtime_id: str) -> Sandbox:
        """Start a sandbox for the warm pool: the first instance of a session, with no visitor yet."""
        image = await asyncio.to_thread(self.images.get, image_name)
        sandbox = Sandbox(runtime_id, WARM_HOSTNAME, image.name, time.time())
        await self.start(sandbox, image)
        if image.ready:
            try:
                await self.wait_ready(sandbox, image.ready)
            except BaseException:  # not ready in time, or the agent stopping: it never joins the pool
                await self.remove(sandbox)
                raise
        return sandbox

    async def wait_ready(self, sandbox: Sandbox, ready: str) -> None:
        """Wait until the sandbox's init has made the file ``ready`` (its image's ``ready``, such as
        the docker image's mark that its engine answers); AgentError after PLAYGROUND_WARM_READY_TIMEOUT."""
        deadline = time.monotonic() + self.cfg.warm_ready_timeout
        while not self.runtime.has_file(sandbox.runtime_id, ready):
            if time.monotonic() > deadline:
                raise AgentError(
                    "create_failed",
                    f"sandbox {sandbox.runtime_id} of image {sandbox.image} did not make its ready file {ready} "
                    f"within {self.cfg.warm_ready_timeout} s (PLAYGROUND_WARM_READY_TIMEOUT); see what its init "
                    "logs inside the image",
                )
            await asyncio.sleep(READY_POLL)

    def record(self, sandbox: Sandbox) -> None:
        """Write the sandbox's record into its directory, for the next agent."""
        write_record(sandbox, self.runtime.sandbox_dir(sandbox.runtime_id))

    async def remove(self, sandbox: Sandbox) -> None:
        """Hang up its terminal (ours and the keeper's copy), remove its processes, state and mounts,
        then its network."""
        for number in list(sandbox.tabs):
            self.tabs.drop(sandbox, number, "destroyed")
        if sandbox.terminal:
            sandbox.terminal.close()
        self.kept.forget(sandbox.runtime_id)
        await self.destroy_host_state(sandbox.runtime_id)
        await self.release_network(sandbox)

    async def destroy_host_state(self, runtime_id: str) -> None:
        """Remove what runc, the sandbox's directory and its cgroups hold of ``runtime_id``."""
        try:
            await self.runtime.destroy(runtime_id)
        except SandboxError as exc:
            raise AgentError("destroy_failed", str(exc)) from None

    async def release_network(self, sandbox: Sandbox) -> None:
        """Remove the sandbox's network (after its processes and mounts are gone)."""
        if sandbox.network is None:
            return
        lease = sandbox.network  # still in the pool's directory if creation failed before taking it in
        if not lease.directory.exists():
            lease = lease.moved_to(self.runtime.sandbox_dir(sandbox.runtime_id))
        try:
            await self.networks.release(lease)
        except (NetworkError, OSError) as exc:
            raise AgentError("destroy_failed", f"removing the network of {sandbox.sandbox_id} failed: {exc}") from None
        sandbox.network = None
