"""The sandbox agent daemon: ``python -m sandbox.agent`` (as root). This module is its
composition root: it builds the parts, starts them in order and stops them.

It listens on a unix socket (``PLAYGROUND_AGENT_SOCKET``) for the requests of
:mod:`sandbox.wire.protocol`: ``ping``, ``images``, ``create``, ``destroy``, ``list``,
``attach`` and, for a sandbox's further terminals (tabs), ``open_terminal``, ``terminals`` and
``close_terminal`` (served by :mod:`sandbox.agent.dispatch`). It owns every sandbox on this host
and every PTY master, and hands a duplicate of each terminal (PTY master and replay memfd) to the
keeper (:mod:`sandbox.keeper`). On start it adopts the sandboxes an earlier agent left running
(their record ``sandbox.json`` and their terminal in the keeper) and removes every other trace
(:mod:`sandbox.agent.recovery`). On SIGTERM or SIGINT it destroys every sandbox and exits, so
stopping it leaks nothing; on SIGUSR1 it exits leaving them running for the next agent (a
restart in place, e.g. an upgrade).
"""

from __future__ import annotations

import asyncio
import functools
import grp
import logging
import os
import resource
import signal

from sandbox import settings
from sandbox.agent.attach import Attacher
from sandbox.agent.capacity import Capacity
from sandbox.agent.dispatch import Dispatcher
from sandbox.agent.groups import Groups
from sandbox.agent.keeping import KeptTerminals
from sandbox.agent.provisioning import Provisioner, registry_hosts
from sandbox.agent.ptyguard import PtyGuard, Watched
from sandbox.agent.recordings import Recordings
from sandbox.agent.recovery import Recovery
from sandbox.agent.registry import Registry
from sandbox.agent.reserving import WarmReservations
from sandbox.agent.sandboxes import Sandboxes
from sandbox.agent.shells import ShellPlacer
from sandbox.agent.stats import Stats
from sandbox.agent.tabs import Tabs
from sandbox.host import abis, cgroups, daemon
from sandbox.host import limits as hostlimits
from sandbox.host.idranges import Ranges
from sandbox.host.lxcfs import Lxcfs
from sandbox.host.mounts import IdmapUnsupported
from sandbox.host.userns import UserLimits
from sandbox.images import recipe
from sandbox.images.store import ImageError, ImageStore
from sandbox.keeper.client import KeeperClient
from sandbox.network.namespaces import NetworkConfig, NetworkError, SandboxNetwork
from sandbox.network.pool import NetworkPool
from sandbox.runtime.bundle import DOCKER_PROFILE
from sandbox.runtime.labscripts import CommandRunner
from sandbox.runtime.runc import RuncRuntime
from sandbox.wire import tls
from sandbox.wire.asciicast import recordings_dir

log = logging.getLogger("sandbox.agent")
TASKS_GRACE = 5.0  # seconds the agent's remaining tasks have to end once it stopped
EXIT_GRACE = 10.0  # seconds it then has to exit, threads included, before it is ended by force

TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a client of the TCP port has to show its certificate


class ListenError(Exception):
    """The agent cannot listen where PLAYGROUND_AGENT_LISTEN says."""


def user_limits(cfg: settings.Settings) -> UserLimits:
    """The bounds each sandbox's user namespace is made with (see sandbox.host.userns)."""
    return UserLimits(
        cfg.sandbox_inotify_instances, cfg.sandbox_inotify_watches, cfg.sandbox_mqueue_bytes, cfg.sandbox_sigpending
    )


class Agent:
    """The parts of the agent, wired together; :meth:`start` and :meth:`shutdown` run them."""

    def __init__(self, cfg: settings.Settings) -> None:
        self.cfg = cfg
        self.images = ImageStore(cfg.images_dir, cfg.uid_base, cfg.image_cache)
        self.runtime = RuncRuntime(cfg.agent_dir, cfg.cgroup_parent, cfg.uid_base)
        self.networks = NetworkPool(
            SandboxNetwork(NetworkConfig.from_settings(cfg.network)),
            cfg.agent_dir / "net",
            cfg.network.pool,
            Ranges(cfg.uid_base, cfg.sandbox_ranges),
            user_limits(cfg),
        )
        self.registry = Registry()
        kept = KeptTerminals(KeeperClient(cfg.keeper_socket))
        self.recordings = Recordings(recordings_dir(cfg.data_dir), cfg.recording_max_bytes, cfg.web_user, self.registry)
        tabs = Tabs(self.registry, self.runtime, kept, cfg.max_terminals, cfg.replay_bytes, self.recordings)
        self.lxcfs = Lxcfs(cfg.data_dir / "lxcfs", cfg.agent_dir, cfg.lxcfs)
        provisioner = Provisioner(cfg, self.runtime, self.networks, self.images, kept, tabs, self.lxcfs)
        capacity = Capacity(
            cfg.host_max_sandboxes, self.registry, cfg.warm_pool, provisioner.build_warm, provisioner.remove
        )
        self.warm = capacity.warm
        self.groups = Groups(self.registry, self.networks.network, self.runtime, registry_hosts(cfg))
        self.sandboxes = Sandboxes(
            cfg.default_image, self.registry, self.images, capacity, provisioner, self.groups, self.recordings
        )
        self.recovery = Recovery(
            self.registry, self.warm, self.runtime, self.networks, self.images, kept, tabs, self.groups
        )
        commands = CommandRunner(self.runtime.runc_root, self.runtime.sandboxes_dir, cfg.cgroup_parent)
        self.ptyguard = PtyGuard(cfg.sandbox_ptys_held, cfg.cgroup_parent, self.watched)
        self.shells = ShellPlacer(cfg.cgroup_parent, cfg.terminal_cpu_weight)
        self.dispatcher = Dispatcher(
            cfg.default_image,
            self.registry,
            self.warm,
            self.images,
            commands,
            self.sandboxes,
            tabs,
            self.recovery,
            Attacher(self.registry, self.shells),
            Stats(self.registry, self.runtime),
            self.recordings,
            reservations=WarmReservations(capacity, self.images, cfg.docker_profile),
        )

    async def start(self) -> list[asyncio.AbstractServer]:
        """Check that sandboxes can see images through idmapped mounts, prepare the default image
        (ImageError, before anything is started, if it cannot be had), adopt what an earlier
        agent left running, remove the rest, listen."""
        self.runtime.check_host(self.cfg.images_dir)  # IdmapUnsupported: this host cannot run sandboxes
        await self.prepare_default_image()  # ImageError: nothing is started without it
        hostlimits.ensure_host_limits(self.cfg.host_max_sandboxes)
        hostlimits.ensure_own_limits(
            {
                "PLAYGROUND_SANDBOX_MQUEUE_BYTES": (resource.RLIMIT_MSGQUEUE, self.cfg.sandbox_mqueue_bytes),
                "PLAYGROUND_SANDBOX_SIGPENDING": (resource.RLIMIT_SIGPENDING, self.cfg.sandbox_sigpending),
            }
        )
        self.weigh_sandboxes()
        self.shells.start()
        await self.recovery.adopt()
        await self.lxcfs.keep(self.runtime.init_pids)  # adopted sandboxes of a dead lxcfs get a new one
        try:
            return await self._start_serving()
        except BaseException:
            if not self.registry.sandboxes:  # adopted sandboxes keep their lxcfs (and cgroups) for the next agent
                await self.lxcfs.stop()
                cgroups.remove_parent(self.cfg.cgroup_parent)  # made by weigh_sandboxes; only empty ones go
            raise

    async def _start_serving(self) -> list[asyncio.AbstractServer]:
        """The rest of :meth:`start`, once lxcfs runs: networks, pools, watchers, the socket and, with
        PLAYGROUND_AGENT_LISTEN, the TCP port where the site of another machine reaches it."""
        self.networks.network.peers = self.groups.pairs()  # loaded with the walls: adopted groups keep talking
        await self.networks.start(keep={s.network.network_id for s in self.registry.sandboxes.values() if s.network})
        await self.groups.update_all()
        self.images.remove_garbage()
        for image in self.cfg.warm_pool:
            try:
                await asyncio.to_thread(self.images.get, image)
            except ImageError as exc:
                log.error("no warm pool for %s: %s", image, exc)
                self.warm.sizes.pop(image, None)
        log.info(
            "the seccomp filter covers x86_64 and i386%s",
            " and x32" if abis.runs_x32() else " (this kernel runs no x32 system calls: they are killed)",
        )
        self.warm.start()
        self.recovery.start_reconciling(self.cfg.reconcile_interval)
        self.lxcfs.start_watching(self.runtime.init_pids)
        self.ptyguard.start_watching()
        path = self.cfg.agent_socket
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        servers: list[asyncio.AbstractServer] = [
            await asyncio.start_unix_server(self.dispatcher.handle, path=str(path))
        ]
        _grant_socket(path, self.cfg.web_user)
        log.info("agent listening on %s", path)
        if self.cfg.agent_listen is not None:
            servers.append(await self._listen_for_the_site(self.cfg.agent_listen))
        return servers

    async def _listen_for_the_site(self, address: tls.Address) -> asyncio.AbstractServer:
        """Serve the site over mutual TLS at ``address`` (see :mod:`sandbox.wire.tls`); a connection
        there can do what one on the unix socket does but receive file descriptors."""
        try:
            server = await asyncio.start_server(
                functools.partial(self.dispatcher.handle, remote=True),
                address.host,
                address.port,
                ssl=tls.server_context(self.cfg.tls_dir),
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
                reuse_address=True,
            )
        except OSError as exc:
            raise ListenError(f"cannot listen on PLAYGROUND_AGENT_LISTEN={address} ({exc.strerror or exc})") from None
        log.info("agent listening for the site on %s (mutual TLS, certificates in %s)", address, self.cfg.tls_dir)
        return server

    def weigh_sandboxes(self) -> None:
        """Set the sandboxes' parent cgroup's CPU weight (PLAYGROUND_SANDBOX_CPU_WEIGHT), so that the host's
        own processes (a keystroke's way through the web tier) run ahead of sandboxes that keep the CPUs
        busy. A host without a cpu controller runs without it, and the log says so."""
        try:
            where = cgroups.set_parent_cpu_weight(self.cfg.cgroup_parent, self.cfg.sandbox_cpu_weight)
        except OSError as exc:
            log.warning("could not set the sandboxes' CPU weight (PLAYGROUND_SANDBOX_CPU_WEIGHT): %s", exc)
            return
        if where is None:
            log.warning("no cpu cgroup controller here: sandboxes weigh as much as the host's own processes")
        else:
            log.info("sandboxes' CPU weight %d set on %s", self.cfg.sandbox_cpu_weight, where)

    def watched(self) -> list[Watched]:
        """The running visitors' sandboxes, for the pseudo-terminal guard (pooled ones run nothing of theirs)."""
        return [
            Watched(s.sandbox_id, s.runtime_id, s.terminal.fd)
            for s in self.registry.sandboxes.values()
            if s.terminal is not None and s.sandbox_id not in self.registry.destroying
        ]

    async def prepare_default_image(self) -> None:
        """Have the default image ready, building it if the store builds it on first use (busybox).

        Raises ImageError, saying what to do, if it is not ready and the store cannot build it (a
        recipe's image such as ``docker`` takes a minute or more, so it is built beforehand:
        ``make run`` does so), or if it needs the docker profile this host turned off (every
        Start would fail); the agent then stops before starting anything.
        """
        name = self.cfg.default_image
        try:
            image = await asyncio.to_thread(self.images.get, name)
        except ImageError as exc:
            why = str(exc).rstrip(".")
            raise ImageError(
                f"the default image {name!r} (PLAYGROUND_DEFAULT_IMAGE) is not ready: {why}. {how_to_get(name)}"
            ) from exc
        if image.profile == DOCKER_PROFILE and not self.cfg.docker_profile:
            raise ImageError(
                f"the default image {name!r} (PLAYGROUND_DEFAULT_IMAGE) runs a Docker engine inside, which "
                "PLAYGROUND_DOCKER_PROFILE=false turns off on this host; set PLAYGROUND_DEFAULT_IMAGE to another "
                "image (e.g. busybox) or turn the profile on."
            )

    async def shutdown(self) -> None:
        """Destroy every sandbox (used on SIGTERM/SIGINT)."""
        self.recovery.stop_reconciling()
        self.ptyguard.stop()
        self.shells.close()
        await self.warm.close()
        await self.sandboxes.destroy_all()
        await self.recovery.remove_leftovers()
        await self.networks.close()
        await self.lxcfs.stop()
        cgroups.remove_parent(self.cfg.cgroup_parent)


def how_to_get(image: str) -> str:
    """The sentence telling an operator how to make ``image`` ready."""
    if image in recipe.available():
        return (
            f"Build it first, as root: python -m sandbox.images build {image} --if-missing "
            f"(make run does so), or set PLAYGROUND_DEFAULT_IMAGE to a ready image (python -m sandbox.images list)."
        )
    return (
        f"Import it first, as root (python -m sandbox.images import <archive or docker://...> {image}), "
        "or set PLAYGROUND_DEFAULT_IMAGE to a ready image (python -m sandbox.images list)."
    )


def _grant_socket(path: os.PathLike[str], web_user: str) -> None:
    """Let the web tier's group, and only it (and root), connect to the agent."""
    try:
        gid = grp.getgrnam(web_user).gr_gid
    except KeyError:
        gid = 0
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)


async def run(cfg: settings.Settings) -> None:
    """Run the agent until a signal: SIGTERM/SIGINT destroy every sandbox, SIGUSR1 leaves them
    to the next agent."""
    agent = Agent(cfg)
    servers = await agent.start()
    stop, hand_over = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def restart_in_place() -> None:
        hand_over.set()
        stop.set()

    loop.add_signal_handler(signal.SIGUSR1, restart_in_place)
    print(f"agent ready on {cfg.agent_socket}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    cfg.agent_socket.unlink(missing_ok=True)
    if hand_over.is_set():
        agent.recordings.flush_all()  # the next agent continues the recordings' files
        log.info(
            "agent stopped for a restart in place: %d sandbox(es) left to the next agent", len(agent.registry.sandboxes)
        )
    else:
        await agent.shutdown()
        log.info("agent stopped")
    # What is left (a connection's handler, a pool's filler half way through a network) is
    # cancelled; it must not keep the process alive, or the launcher never starts the next agent.
    daemon.exit_within(EXIT_GRACE)
    if await daemon.end_other_tasks(TASKS_GRACE):
        daemon.exit_now(1)


def main() -> int:
    """``python -m sandbox.agent``: 0 after a clean stop, 2 if it cannot run."""
    cfg = daemon.prepare("agent", "it creates namespaces, cgroups and mounts")
    if cfg is None:
        return 2
    try:
        asyncio.run(run(cfg))
    except NetworkError as exc:
        print(f"playground agent: cannot set up sandbox networking: {exc}", flush=True)
        return 2
    except IdmapUnsupported as exc:
        print(f"playground agent: cannot start sandboxes on this host: {exc.strerror}", flush=True)
        return 2
    except hostlimits.OwnLimitTooLow as exc:
        print(f"playground agent: cannot bound sandboxes as configured: {exc}", flush=True)
        return 2
    except (ImageError, ListenError) as exc:
        print(f"playground agent: {exc}", flush=True)
        return 2
    return 0
