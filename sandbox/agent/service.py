"""The sandbox agent daemon: ``python -m sandbox.agent`` (as root).

It listens on a unix socket (``PLAYGROUND_AGENT_SOCKET``) for the requests of
:mod:`sandbox.wire.protocol`: ``ping``, ``images``, ``create``, ``destroy``, ``list``,
``attach`` and, for a sandbox's further terminals (tabs), ``open_terminal``, ``terminals`` and
``close_terminal``. It owns every sandbox on this host and every PTY master, and hands a duplicate of
each terminal (PTY master and replay memfd) to the keeper (:mod:`sandbox.keeper`). On start it
adopts the sandboxes an earlier agent left running (their record ``sandbox.json`` and their
terminal in the keeper) and removes every other trace. On SIGTERM or SIGINT it destroys every
sandbox and exits, so stopping it leaks nothing; on SIGUSR1 it exits leaving them running for
the next agent (a restart in place, e.g. an upgrade).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import settings
from sandbox.agent.warmpool import WARM_HOSTNAME, WarmPool
from sandbox.host import cgroups, daemon
from sandbox.host import limits as hostlimits
from sandbox.images.store import Image, ImageError, ImageStore
from sandbox.keeper.client import KeeperClient, KeeperError
from sandbox.network.namespaces import NetworkConfig, NetworkError, SandboxNetwork
from sandbox.network.pool import Lease, NetworkPool
from sandbox.pty.terminal import HIGH_WATER, Terminal
from sandbox.runtime import labscripts as commands
from sandbox.runtime.bundle import SandboxSpec
from sandbox.runtime.labscripts import CommandRunner
from sandbox.runtime.runc import RuncRuntime, SandboxError, process_stat
from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError, Kind, ProtocolError
from sandbox.wire.replay import ReplayBuffer

log = logging.getLogger("sandbox.agent")

SANDBOX_ID = re.compile(r"^[a-z0-9]{8,64}$")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
REQUEST_TIMEOUT = 10.0
MAX_ATTACH_WAIT = 300
WARM_WAIT = 20.0  # seconds a create on a full host waits for a pooled sandbox being started
SHELL_EXIT_GRACE = 0.05  # seconds for a tab's last output to be read after its shell exited
RECORD = "sandbox.json"  # in a sandbox's directory: what the next agent needs to adopt it


def tab_key(runtime_id: str, number: int) -> str:
    """The keeper's key of a sandbox's terminal ``number`` (>= 1; terminal 0's key is the runtime id)."""
    return f"{runtime_id}/{number}"


@dataclass
class Tab:
    """A terminal after the first (a browser tab): a shell started with ``runc exec``.

    ``pid`` is its shell's host pid, which leads the shell's session; ``started`` its start time
    (clock ticks after boot), so that a pid reused after the shell is gone is never taken for it.
    """

    number: int
    terminal: Terminal
    pid: int
    started: int
    pidfd: int = -1  # polls readable once the shell has exited (see Agent._watch_shell)


@dataclass
class Sandbox:
    """A live sandbox as the agent knows it."""

    sandbox_id: str
    hostname: str
    image: str
    created: float
    terminal: Terminal | None = None
    network: Lease | None = None
    runtime_id: str = ""  # runc's id and the directory name; differs from sandbox_id if it came warm
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tabs: dict[int, Tab] = field(default_factory=dict)  # terminals 1, 2, ...; terminal 0 is ``terminal``
    next_tab: int = 1  # numbers are never reused, so a stale page cannot reach another tab's shell

    def __post_init__(self) -> None:
        self.runtime_id = self.runtime_id or self.sandbox_id

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.sandbox_id,
            "hostname": self.hostname,
            "image": self.image,
            "created": self.created,
            "exited": bool(self.terminal and self.terminal.exited),
            "address": str(self.network.address) if self.network else None,
            "runtime_id": self.runtime_id,
            "terminals": [0, *sorted(self.tabs)],
        }

    def terminal_of(self, number: int) -> Terminal | None:
        """Terminal ``number`` (0 is the first shell's), or None if it is closed or was never opened."""
        if number == 0:
            return self.terminal
        tab = self.tabs.get(number)
        return tab.terminal if tab else None

    def kept_terminals(self) -> dict[str, Terminal]:
        """Every open terminal of the sandbox by its keeper key."""
        kept = {self.runtime_id: self.terminal} if self.terminal and not self.terminal.exited else {}
        kept.update({tab_key(self.runtime_id, n): t.terminal for n, t in self.tabs.items() if not t.terminal.exited})
        return kept

    def record(self) -> dict[str, Any]:
        """What an agent started later needs to adopt this sandbox (see :meth:`Agent.adopt`)."""
        network = self.network
        return {
            "id": self.sandbox_id,
            "hostname": self.hostname,
            "image": self.image,
            "created": self.created,
            "runtime_id": self.runtime_id,
            "network": network
            and {"id": network.network_id, "netns": str(network.netns), "address": str(network.address)},
            "tabs": [{"n": t.number, "pid": t.pid, "started": t.started} for t in self.tabs.values()],
            "next_tab": self.next_tab,
        }


class AttachedViewer:
    """The agent's end of one ``attach`` connection."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.paused = False
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)

    def send_output(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        for start in range(0, len(data), protocol.MAX_PAYLOAD):
            self.writer.write(protocol.encode(Kind.DATA, data[start : start + protocol.MAX_PAYLOAD]))

    def send_event(self, event: dict[str, object]) -> None:
        if not self.writer.is_closing():
            self.writer.write(protocol.encode_json(Kind.EVENT, event))

    def hang_up(self) -> None:
        """End the stream once what is queued is sent (its terminal was closed)."""
        self.writer.close()

    def backlog(self) -> int:
        return 0 if self.writer.is_closing() else self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass


class Agent:
    """Creates, tracks, streams and destroys the sandboxes of this host."""

    def __init__(self, cfg: settings.Settings) -> None:
        self.cfg = cfg
        self.images = ImageStore(cfg.images_dir, cfg.uid_base, cfg.image_cache)
        self.runtime = RuncRuntime(cfg.agent_dir, cfg.cgroup_parent, cfg.uid_base)
        self.commands = CommandRunner(self.runtime.runc_root, cfg.cgroup_parent)
        net = cfg.network
        self.networks = NetworkPool(SandboxNetwork(NetworkConfig.from_settings(net)), cfg.agent_dir / "net", net.pool)
        self.resolv_conf = (
            "".join(f"nameserver {a}\n" for a in net.dns)
            if net.egress
            else "# No outbound network on this playground (PLAYGROUND_EGRESS is off).\n"
        )
        self.sandboxes: dict[str, Sandbox] = {}
        self.created: dict[str, asyncio.Event] = {}  # attachers waiting for a sandbox to exist
        self.destroying: set[str] = set()  # sandboxes being destroyed (their slots free up soon)
        self.waiting: dict[str, int] = {}  # how many attachers wait on each of those events
        self.warm = WarmPool(cfg.warm_pool, self._build_warm, self._discard_warm, self._room)
        self.keeper = KeeperClient(cfg.keeper_socket)
        self._reconciler: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()  # tabs being closed after their shell exited
        self.ops: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "ping": self.op_ping,
            "images": self.op_images,
            "create": self.op_create,
            "destroy": self.op_destroy,
            "list": self.op_list,
            "reconcile": self.op_reconcile,
            "open_terminal": self.op_open_terminal,
            "terminals": self.op_terminals,
            "close_terminal": self.op_close_terminal,
            "run": self.op_run,
        }

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> asyncio.AbstractServer:
        """Adopt what an earlier agent left running, remove the rest, prepare the default image, listen."""
        hostlimits.ensure_key_quota(self.cfg.host_max_sandboxes)
        await self.adopt()
        await self.networks.start(keep={s.network.network_id for s in self.sandboxes.values() if s.network})
        self.images.remove_garbage()
        for image in self.cfg.warm_pool:
            try:
                await asyncio.to_thread(self.images.get, image)
            except ImageError as exc:
                log.error("no warm pool for %s: %s", image, exc)
                self.warm.sizes.pop(image, None)
        self.warm.start()
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="reconcile")
        await asyncio.to_thread(self.images.get, self.cfg.default_image)
        path = self.cfg.agent_socket
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self.handle, path=str(path))
        _grant_socket(path, self.cfg.web_user)
        log.info("agent listening on %s", path)
        return server

    async def remove_leftovers(self) -> None:
        for sandbox_id in sorted(self.runtime.known_ids()):
            log.info("removing leftover sandbox %s from an earlier run", sandbox_id)
            await self.runtime.destroy(sandbox_id)

    async def adopt(self) -> None:
        """Take over the sandboxes an earlier agent left running; remove every other trace.

        A sandbox is adopted when its directory has a record (written once a visitor's sandbox
        was fully created), runc knows it, and the keeper holds its terminal; pooled sandboxes
        and half-created or half-destroyed ones are removed. The keeper lets go of the rest.
        """
        try:
            kept = self.keeper.keys()
        except KeeperError as exc:
            log.warning("%s; sandboxes of an earlier agent cannot be adopted", exc)
            kept = set()
        for runtime_id in sorted(self.runtime.known_ids()):
            adoptable = self._adoptable(runtime_id) if runtime_id in kept else None
            if adoptable is not None:
                sandbox, record = adoptable
                await self._adopt_tabs(sandbox, record.get("tabs", []))
                sandbox.next_tab = int(record.get("next_tab", 1))
                self.sandboxes[sandbox.sandbox_id] = sandbox
                log.info(
                    "adopted sandbox %s (%s, image %s) from an earlier agent",
                    sandbox.sandbox_id,
                    sandbox.hostname,
                    sandbox.image,
                )
                continue
            log.info("removing leftover sandbox %s from an earlier run", runtime_id)
            await self.runtime.destroy(runtime_id)
        adopted = {key for s in self.sandboxes.values() for key in s.kept_terminals()}
        for key in kept - adopted:
            self._forget_terminal(key)

    async def _adopt_tabs(self, sandbox: Sandbox, tabs: list[dict[str, int]]) -> None:
        """Take over the recorded tabs of an adopted sandbox; end the shells of those the keeper lost."""
        for entry in tabs:
            number, pid, started = int(entry["n"]), int(entry["pid"]), int(entry["started"])
            terminal = self._kept_terminal(
                tab_key(sandbox.runtime_id, number), lambda n=number: self._tab_ended(sandbox, n)
            )
            if terminal is None:
                log.info("ending tab %d of sandbox %s: the keeper lost its terminal", number, sandbox.sandbox_id)
                with contextlib.suppress(SandboxError):
                    await self.runtime.kill_session(sandbox.runtime_id, pid, started)
                continue
            tab = sandbox.tabs[number] = Tab(number, terminal, pid, started)
            self._watch_shell(sandbox, tab)

    def _kept_terminal(self, key: str, on_exit: Callable[[], None] | None = None) -> Terminal | None:
        """The terminal the keeper holds under ``key`` (PTY master and replay buffer), or None."""
        try:
            fds = self.keeper.get(key)
        except KeeperError as exc:
            log.info("terminal %s cannot be adopted: %s", key, exc)
            return None
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return None
        try:
            replay = ReplayBuffer(0, fd=fds[1])
        except (OSError, ValueError) as exc:
            os.close(fds[0])
            log.info("terminal %s cannot be adopted: its replay buffer is unusable: %s", key, exc)
            return None
        return Terminal(fds[0], replay, on_exit)

    def _adoptable(self, runtime_id: str) -> tuple[Sandbox, dict[str, Any]] | None:
        """The sandbox recorded in ``runtime_id``'s directory with its terminal from the keeper, and
        its record; or None."""
        directory = self.runtime.sandbox_dir(runtime_id)
        try:
            record = json.loads((directory / RECORD).read_text())
            if not (self.runtime.runc_root / runtime_id).is_dir():
                return None
        except (OSError, ValueError) as exc:
            log.info("sandbox %s cannot be adopted: %s", runtime_id, exc)
            return None
        terminal = self._kept_terminal(runtime_id)
        if terminal is None:
            return None
        net = record.get("network")
        network = net and Lease(net["id"], Path(net["netns"]), ipaddress.IPv4Address(net["address"]), directory / "net")
        return Sandbox(
            record["id"], record["hostname"], record["image"], record["created"], terminal, network, runtime_id
        ), record

    def _keep_terminal(self, sandbox: Sandbox) -> None:
        """Give the keeper a duplicate of the sandbox's first terminal, so the shell outlives this agent."""
        if sandbox.terminal is not None:
            self._keep(sandbox.runtime_id, sandbox.terminal)

    def _keep(self, key: str, terminal: Terminal) -> None:
        """Give the keeper a duplicate of ``terminal`` (PTY master and replay memfd) under ``key``."""
        if terminal.fd < 0:
            return
        try:
            self.keeper.keep(key, [terminal.fd, terminal.replay.fd])
        except KeeperError as exc:
            log.warning("%s; terminal %s will not survive an agent restart", exc, key)

    def _forget_terminal(self, runtime_id: str) -> None:
        try:
            self.keeper.drop(runtime_id)
        except KeeperError as exc:
            log.warning("%s; the next reconciliation lets go of %s's terminal", exc, runtime_id)

    def _write_record(self, sandbox: Sandbox) -> None:
        """Record the sandbox for the next agent (atomically: a torn record is never adopted)."""
        directory = self.runtime.sandbox_dir(sandbox.runtime_id)
        partial = directory / (RECORD + ".new")
        try:
            partial.write_text(json.dumps(sandbox.record()))
            os.replace(partial, directory / RECORD)
        except OSError as exc:
            log.warning(
                "could not record sandbox %s (%s); it will not survive an agent restart", sandbox.sandbox_id, exc
            )

    async def reconcile(self) -> list[str]:
        """Remove whatever exists on the host but belongs to no sandbox this agent tracks.

        Compares runc state, sandbox directories and cgroups (by runtime id), and network
        namespaces, veths, addresses and pooled sysfs mounts (by network id) with the live and
        pooled sandboxes, and destroys the rest: the remains of a crash half-way through a
        create or a destroy. Also deletes the workspaces of image builds, imports and removals
        whose process is gone. Returns what it removed. Safe to run at any time.
        """
        removed = []
        for runtime_id in sorted(self.runtime.known_ids()):
            tracked = {s.runtime_id for s in self.sandboxes.values()} | self.warm.runtime_ids()
            if runtime_id in tracked:
                continue
            log.warning("reconcile: removing sandbox remains %s that no session or pool owns", runtime_id)
            try:
                await self.runtime.destroy(runtime_id)
                removed.append(runtime_id)
            except SandboxError as exc:
                log.error("reconcile: could not remove %s yet: %s", runtime_id, exc)
        pooled = [s for ready in self.warm.ready.values() for s in ready]
        in_use = {s.network.network_id for s in [*self.sandboxes.values(), *pooled] if s.network}
        removed += await self.networks.reconcile(in_use)
        removed += [str(p) for p in await asyncio.to_thread(self.images.remove_garbage)]
        self._sync_keeper([*self.sandboxes.values(), *pooled])
        return removed

    def _sync_keeper(self, live: list[Sandbox]) -> None:
        """Make the keeper hold exactly the live terminals (after a keeper restart, or a lost drop)."""
        try:
            kept = self.keeper.keys()
        except KeeperError:
            return  # not running: nothing to repair until it is back
        tracked = {key: terminal for s in live for key, terminal in s.kept_terminals().items()}
        for key in kept - set(tracked):
            self._forget_terminal(key)
        for key in set(tracked) - kept:
            log.info("reconcile: handing the terminal of %s to the keeper again", key)
            self._keep(key, tracked[key])

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.reconcile_interval)
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciliation failed; trying again in %d s", self.cfg.reconcile_interval)

    async def shutdown(self) -> None:
        """Destroy every sandbox (used on SIGTERM/SIGINT)."""
        if self._reconciler is not None:
            self._reconciler.cancel()
        await self.warm.close()
        ids = list(self.sandboxes)
        log.info("shutting down: destroying %d sandbox(es)", len(ids))
        await asyncio.gather(*(self.destroy(i) for i in ids), return_exceptions=True)
        await self.remove_leftovers()
        await self.networks.close()
        cgroups.remove_parent(self.cfg.cgroup_parent)

    # -- connections ------------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            frame = await asyncio.wait_for(protocol.read_frame(reader), REQUEST_TIMEOUT)
            if frame is None:
                return
            kind, payload = frame
            if kind != Kind.REQUEST:
                raise ProtocolError("the first frame of a connection must be a request")
            request = protocol.decode_json(payload)
            op = request.get("op")
            if op == "attach":
                await self.attach(request, reader, writer)
                return
            handler = self.ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise AgentError("bad_request", f"unknown operation {op!r}")
            reply = await handler(request)
            writer.write(protocol.encode_json(Kind.REPLY, {"ok": True, **reply}))
        except AgentError as exc:
            writer.write(protocol.encode_json(Kind.REPLY, {"ok": False, "error": exc.code, "message": exc.message}))
        except (TimeoutError, ProtocolError) as exc:
            log.warning("bad request on agent socket: %s", exc or "timeout")
            writer.write(protocol.encode_json(Kind.REPLY, {"ok": False, "error": "bad_request", "message": str(exc)}))
        except ConnectionError:
            pass
        except Exception:
            log.exception("request failed")
            writer.write(
                protocol.encode_json(
                    Kind.REPLY,
                    {"ok": False, "error": "agent_failure", "message": "the sandbox agent failed; see its log"},
                )
            )
        finally:
            try:
                await writer.drain()
                writer.close()
            except (ConnectionError, RuntimeError):
                pass

    # -- operations -------------------------------------------------------------------------
    async def op_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"sandboxes": len(self.sandboxes)}

    async def op_images(self, request: dict[str, Any]) -> dict[str, Any]:
        """Names (ready or built on first use), the default, and the metadata of each ready image."""
        ready = await asyncio.to_thread(self.images.list)
        return {
            "images": self.images.names(),
            "default": self.cfg.default_image,
            "details": [image.describe() for image in ready],
        }

    async def op_list(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "sandboxes": [s.describe() for s in self.sandboxes.values()],
            "warm": {image: len(ready) for image, ready in self.warm.ready.items()},
        }

    async def op_reconcile(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"removed": await self.reconcile()}

    async def op_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run a script inside a live sandbox (lab checks): see :mod:`sandbox.runtime.labscripts`."""
        sandbox = self._live_sandbox(request, key="sandbox")
        script, timeout, limit = commands.parse_request(request)
        result = await self.commands.run(sandbox.runtime_id, script, timeout, limit)
        return result.reply()

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        sandbox_id = _require(request, "id", SANDBOX_ID, "8-64 lower-case letters or digits")
        hostname = _require(request, "hostname", HOSTNAME, "a DNS label of at most 63 characters")
        image_name = request.get("image", self.cfg.default_image)
        if sandbox_id in self.sandboxes:
            return {"sandbox": self.sandboxes[sandbox_id].describe(), "created": False}
        try:
            image = await asyncio.to_thread(self.images.get, str(image_name))
        except ImageError as exc:
            raise AgentError("unknown_image", str(exc)) from None
        sandbox = Sandbox(sandbox_id, hostname, image.name, time.time())
        self.sandboxes[sandbox_id] = sandbox
        async with sandbox.lock:
            started = time.perf_counter()
            warm = self.warm.take(image.name, hostname) or await self._wait_for_warm(image.name, hostname)
            try:
                if warm is not None:
                    assert isinstance(warm, Sandbox)
                    sandbox.runtime_id, sandbox.network, sandbox.created = (
                        warm.runtime_id,
                        warm.network,
                        warm.created,
                    )
                    sandbox.terminal = warm.terminal
                else:
                    await self._make_room(sandbox_id)
                    await self._start(sandbox, image)
                self._write_record(sandbox)
            except AgentError:
                self.sandboxes.pop(sandbox_id, None)
                self._announce(sandbox_id)
                self.warm.wake()
                raise
        self._announce(sandbox_id)
        log.info(
            "created sandbox %s (%s, image %s) in %.1f ms%s",
            sandbox_id,
            hostname,
            image.name,
            (time.perf_counter() - started) * 1000,
            f" (warm {sandbox.runtime_id})" if warm else "",
        )
        return {"sandbox": sandbox.describe(), "created": True}

    async def _start(self, sandbox: Sandbox, image: Image) -> None:
        """Start ``sandbox`` (its runtime id, hostname) from ``image``: network, runc, terminal."""
        quotas = self.cfg.quotas_for(image.name, image.quotas)
        spec = SandboxSpec(
            sandbox.runtime_id,
            sandbox.hostname,
            image.cmd,
            image.env,
            image.workdir,
            quotas.memory_bytes,
            quotas.cpus,
            quotas.pids,
            quotas.disk_bytes,
        )
        try:
            sandbox.network = await self.networks.take()
            fd = await self.runtime.create(spec, image, sandbox.network, self.resolv_conf)
        except (SandboxError, NetworkError, OSError) as exc:
            with contextlib.suppress(AgentError):
                await self._release_network(sandbox)
            log.error("creating sandbox %s failed: %s", sandbox.runtime_id, exc)
            raise AgentError("create_failed", str(exc)) from None
        sandbox.terminal = Terminal(fd, ReplayBuffer(self.cfg.replay_bytes))
        self._keep_terminal(sandbox)

    def _room(self) -> int:
        """Free sandbox slots on this host (PLAYGROUND_HOST_MAX_SANDBOXES), pooled ones counted."""
        return self.cfg.host_max_sandboxes - len(self.sandboxes) - self.warm.count()

    async def _wait_for_warm(self, image: str, hostname: str) -> Sandbox | None:
        """On a full host, a pooled sandbox still being started is the visitor's best chance: wait for it."""
        deadline = time.monotonic() + WARM_WAIT
        while self._room() < 0 and self.warm.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            warm = self.warm.take(image, hostname)
            if warm is not None:
                assert isinstance(warm, Sandbox)
                return warm
        return None

    async def _make_room(self, sandbox_id: str) -> None:
        """Before a cold start (the new sandbox is already counted): evict a pooled one or refuse."""
        deadline = time.monotonic() + WARM_WAIT
        while self._room() < 0:
            if await self.warm.evict():
                continue
            if (self.destroying or self.warm.busy) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # a slot is about to free up
                continue
            if self._room() < 0:
                raise AgentError(
                    "at_capacity",
                    f"this host already runs its maximum of {self.cfg.host_max_sandboxes} "
                    "sandboxes (PLAYGROUND_HOST_MAX_SANDBOXES); try again when a session ends",
                )

    async def _build_warm(self, image_name: str, runtime_id: str) -> Sandbox:
        image = await asyncio.to_thread(self.images.get, image_name)
        sandbox = Sandbox(runtime_id, WARM_HOSTNAME, image.name, time.time())
        await self._start(sandbox, image)
        return sandbox

    async def _discard_warm(self, pooled: Any) -> None:
        assert isinstance(pooled, Sandbox)
        await self._remove(pooled)

    # -- tabs: terminals after the first ----------------------------------------------------
    def _live_sandbox(self, request: dict[str, Any], key: str = "id") -> Sandbox:
        """The running sandbox the request names under ``key``; AgentError ``unknown_sandbox`` if
        there is none, or it is being destroyed."""
        sandbox_id = _require(request, key, SANDBOX_ID, "8-64 lower-case letters or digits")
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.terminal is None or sandbox_id in self.destroying:
            raise AgentError("unknown_sandbox", f"no sandbox {sandbox_id} on this host")
        return sandbox

    async def op_open_terminal(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start another shell in the sandbox, on a terminal of its own: ``{"terminal": n}`` (n >= 1).

        At most PLAYGROUND_MAX_TERMINALS terminals per sandbox, the first included. The new
        terminal is handed to the keeper and recorded like the first, so it survives an agent restart.
        """
        sandbox = self._live_sandbox(request)
        async with sandbox.lock:
            if self.sandboxes.get(sandbox.sandbox_id) is not sandbox or sandbox.terminal is None:
                raise AgentError("unknown_sandbox", f"no sandbox {sandbox.sandbox_id} on this host")
            if sandbox.terminal.exited:
                raise AgentError(
                    "sandbox_exited",
                    "the sandbox's first shell has exited, which stopped the sandbox; "
                    "end the session and start a new one",
                )
            limit = self.cfg.max_terminals
            if 1 + len(sandbox.tabs) >= limit:
                raise AgentError(
                    "too_many_terminals",
                    f"this sandbox already has {limit} terminals, the most it may "
                    "have (PLAYGROUND_MAX_TERMINALS); close one first",
                )
            number = sandbox.next_tab
            sandbox.next_tab += 1
            tab = await self._start_tab(sandbox, number)
            sandbox.tabs[number] = tab
            self._watch_shell(sandbox, tab)
            self._keep(tab_key(sandbox.runtime_id, number), tab.terminal)
            self._write_record(sandbox)
        log.info("opened terminal %d of sandbox %s (shell pid %d)", number, sandbox.sandbox_id, tab.pid)
        return {"terminal": number}

    async def _start_tab(self, sandbox: Sandbox, number: int) -> Tab:
        try:
            fd, pid = await self.runtime.exec_terminal(sandbox.runtime_id, number)
        except SandboxError as exc:
            log.error("opening terminal %d of sandbox %s failed: %s", number, sandbox.sandbox_id, exc)
            raise AgentError("open_failed", str(exc)) from None
        stat = process_stat(pid)
        terminal = Terminal(fd, ReplayBuffer(self.cfg.replay_bytes), lambda: self._tab_ended(sandbox, number))
        return Tab(number, terminal, pid, stat[1] if stat else 0)

    async def op_terminals(self, request: dict[str, Any]) -> dict[str, Any]:
        """The sandbox's open terminals: ``{"terminals": [0, n, ...]}``."""
        sandbox = self._live_sandbox(request)
        return {"terminals": [0, *sorted(sandbox.tabs)]}

    async def op_close_terminal(self, request: dict[str, Any]) -> dict[str, Any]:
        """End terminal ``n`` >= 1: its viewers get ``exit`` (``closed``) and its shell's session is
        killed. ``{"closed": bool}``: False when it was already closed (repeat-safe)."""
        sandbox = self._live_sandbox(request)
        number = _terminal_number(request)
        if number == 0:
            raise AgentError("first_terminal", "terminal 0 is the sandbox's first shell; it ends with the sandbox")
        return {"closed": await self._close_tab(sandbox, number, "closed")}

    def _watch_shell(self, sandbox: Sandbox, tab: Tab) -> None:
        """End the tab when its shell exits, as a terminal window closes: also when jobs it left
        in the background still hold the terminal (they are killed with the tab)."""
        try:
            tab.pidfd = os.pidfd_open(tab.pid)
        except OSError:
            tab.pidfd = -1
        stat = process_stat(tab.pid) if tab.pidfd >= 0 else None
        if stat is None or stat[1] != tab.started:  # gone, possibly with its pid reused
            self._tab_ended(sandbox, tab.number)
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            loop.remove_reader(tab.pidfd)
            loop.call_later(SHELL_EXIT_GRACE, self._tab_ended, sandbox, tab.number)

        loop.add_reader(tab.pidfd, exited)

    def _tab_ended(self, sandbox: Sandbox, number: int) -> None:
        """A tab's terminal ended (its shell exited, or it was closed): free it, once."""
        task = asyncio.ensure_future(self._close_tab(sandbox, number, "shell_exited"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close_tab(self, sandbox: Sandbox, number: int, reason: str) -> bool:
        """Close tab ``number`` (viewers get ``exit`` with ``reason``), then kill what its shell left."""
        async with sandbox.lock:
            tab = self._drop_tab(sandbox, number, reason)
            if tab is None:
                return False
            if self.sandboxes.get(sandbox.sandbox_id) is sandbox:
                self._write_record(sandbox)
        try:
            await self.runtime.kill_session(sandbox.runtime_id, tab.pid, tab.started)
        except SandboxError as exc:
            log.warning("%s; the sandbox's destruction will end them", exc)
        log.info("closed terminal %d of sandbox %s (%s)", number, sandbox.sandbox_id, reason)
        return True

    def _drop_tab(self, sandbox: Sandbox, number: int, reason: str) -> Tab | None:
        """Forget tab ``number``: close its PTY (the shell hangs up), its replay buffer, the keeper's
        copy, and its viewers' streams after an ``exit`` event."""
        tab = sandbox.tabs.pop(number, None)
        if tab is None:
            return None
        if tab.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(tab.pidfd)
            os.close(tab.pidfd)
            tab.pidfd = -1
        viewers = list(tab.terminal.viewers)
        tab.terminal.close(reason)
        for viewer in viewers:
            if isinstance(viewer, AttachedViewer):
                viewer.hang_up()
        self._forget_terminal(tab_key(sandbox.runtime_id, number))
        return tab

    async def op_destroy(self, request: dict[str, Any]) -> dict[str, Any]:
        sandbox_id = _require(request, "id", SANDBOX_ID, "8-64 lower-case letters or digits")
        existed = await self.destroy(sandbox_id)
        return {"destroyed": existed}

    async def destroy(self, sandbox_id: str) -> bool:
        """Destroy a sandbox; True if the agent knew it. Safe to repeat."""
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is not None:
            async with sandbox.lock:
                if self.sandboxes.get(sandbox_id) is not sandbox:
                    return True  # a concurrent destroy finished it while we waited
                self.destroying.add(sandbox_id)
                try:
                    await self._remove(sandbox)
                    self.sandboxes.pop(sandbox_id, None)
                finally:
                    self.destroying.discard(sandbox_id)
            self.warm.wake()
            log.info("destroyed sandbox %s", sandbox_id)
            return True
        await self._destroy_host_state(sandbox_id)
        return False

    async def _remove(self, sandbox: Sandbox) -> None:
        """Hang up its terminal (ours and the keeper's copy), remove its processes, state and mounts,
        then its network."""
        for number in list(sandbox.tabs):
            self._drop_tab(sandbox, number, "destroyed")
        if sandbox.terminal:
            sandbox.terminal.close()
        self._forget_terminal(sandbox.runtime_id)
        await self._destroy_host_state(sandbox.runtime_id)
        await self._release_network(sandbox)

    async def _destroy_host_state(self, sandbox_id: str) -> None:
        try:
            await self.runtime.destroy(sandbox_id)
        except SandboxError as exc:
            raise AgentError("destroy_failed", str(exc)) from None

    async def _release_network(self, sandbox: Sandbox) -> None:
        """Remove the sandbox's network (after its processes and mounts are gone)."""
        if sandbox.network is None:
            return
        lease = sandbox.network  # still in the pool's directory if creation failed before taking it in
        if not lease.directory.exists():
            lease = lease.moved_to(self.runtime.sandbox_dir(sandbox.runtime_id) / "net")
        try:
            await self.networks.release(lease)
        except (NetworkError, OSError) as exc:
            raise AgentError("destroy_failed", f"removing the network of {sandbox.sandbox_id} failed: {exc}") from None
        sandbox.network = None

    def _announce(self, sandbox_id: str) -> None:
        """Wake attachers waiting for ``sandbox_id`` (it now exists, or its creation failed)."""
        event = self.created.pop(sandbox_id, None)
        if event is not None:
            event.set()

    async def _wait_for_terminal(self, sandbox_id: str, wait: float) -> Sandbox | None:
        sandbox = self.sandboxes.get(sandbox_id)
        if (sandbox is None or sandbox.terminal is None) and wait > 0:
            event = self.created.setdefault(sandbox_id, asyncio.Event())
            self.waiting[sandbox_id] = self.waiting.get(sandbox_id, 0) + 1
            try:
                await asyncio.wait_for(event.wait(), wait)
            except TimeoutError:
                pass
            finally:
                self.waiting[sandbox_id] -= 1
                if not self.waiting[sandbox_id]:  # the last waiter cleans up, even if nothing came
                    del self.waiting[sandbox_id]
                    if self.created.get(sandbox_id) is event:
                        del self.created[sandbox_id]
            sandbox = self.sandboxes.get(sandbox_id)
        return sandbox

    async def attach(self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Stream a terminal: replay, then live output; input, resize and pause from the client.

        With ``"wait": seconds`` (at most MAX_ATTACH_WAIT) the reply waits until a sandbox
        being created exists, so a viewer sees its first prompt the moment there is one.
        ``"terminal": n`` chooses a tab (default 0, the first shell); a closed tab's stream ends.
        With ``"pty": true`` the reply carries duplicates of the PTY master and the replay memfd,
        and the viewer may be lent the reading (see :mod:`sandbox.wire.protocol`).
        """
        sandbox_id = _require(request, "id", SANDBOX_ID, "8-64 lower-case letters or digits")
        wait = request.get("wait", 0)
        if not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_ATTACH_WAIT:
            raise AgentError("bad_request", f"wait={wait!r} is invalid; use 0 to {MAX_ATTACH_WAIT} seconds")
        number = _terminal_number(request)
        hand_over = request.get("pty", False)
        if not isinstance(hand_over, bool):
            raise AgentError("bad_request", f"pty={hand_over!r} is invalid; use true or false")
        sandbox = await self._wait_for_terminal(sandbox_id, float(wait))
        if sandbox is None or sandbox.terminal is None:
            raise AgentError("unknown_sandbox", f"no sandbox {sandbox_id} on this host")
        terminal = sandbox.terminal_of(number)
        if terminal is None:
            raise AgentError(
                "unknown_terminal", f"sandbox {sandbox_id} has no terminal {number}: it was closed, or never opened"
            )
        await terminal.take_back()  # a viewer reading the PTY itself stops before this one gets the replay
        reply = protocol.encode_json(Kind.REPLY, {"ok": True, "sandbox": sandbox.describe(), "terminal": number})
        hand_over = hand_over and terminal.replay.size_sealed  # (a buffer of an older agent may not be)
        if hand_over:
            _send_with_fds(writer, reply, [terminal.fd, terminal.replay.fd])
        else:
            writer.write(reply)
        viewer = AttachedViewer(writer)
        terminal.attach(viewer, can_borrow=hand_over)
        try:
            while True:
                frame = await protocol.read_frame(reader)
                if frame is None:
                    break
                await self._stream_frame(terminal, viewer, *frame)
        except (ProtocolError, ConnectionError) as exc:
            log.info("terminal stream of %s ended: %s", sandbox_id, exc)
        finally:
            terminal.detach(viewer)
            terminal.viewer_changed()

    async def _stream_frame(self, terminal: Terminal, viewer: AttachedViewer, kind: Kind, payload: bytes) -> None:
        if kind == Kind.DATA:
            await terminal.write(payload)
        elif kind == Kind.RESIZE:
            size = protocol.decode_json(payload)
            cols, rows = size.get("cols"), size.get("rows")
            if not isinstance(cols, int) or not isinstance(rows, int):
                raise ProtocolError("resize needs integer cols and rows")
            terminal.resize(cols, rows)
        elif kind == Kind.TYPED:
            terminal.typed()
        elif kind == Kind.GIVEN:
            terminal.given(viewer)
        elif kind in (Kind.PAUSE, Kind.RESUME):
            viewer.paused = kind == Kind.PAUSE
            terminal.viewer_changed()
        else:
            raise ProtocolError(f"frame kind {kind.name} is not allowed on a terminal stream")


def _send_with_fds(writer: asyncio.StreamWriter, data: bytes, fds: list[int]) -> None:
    """Write ``data``, the first bytes of the connection, with duplicates of ``fds`` attached
    (SCM_RIGHTS). If the socket cannot take them now, ``data`` goes without the fds: the client
    then sends its input through the agent, as without ``pty``."""
    sock = writer.get_extra_info("socket")
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as same:  # the transport's socket wrapper has no sendmsg
            sent = socket.send_fds(same, [data], fds)
    except BlockingIOError:
        sent = 0
    writer.write(data[sent:])


def _require(request: dict[str, Any], key: str, pattern: re.Pattern[str], accepted: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise AgentError("bad_request", f"{key}={value!r} is invalid; use {accepted}")
    return value


def _terminal_number(request: dict[str, Any]) -> int:
    """The request's ``terminal`` (default 0): a terminal number."""
    number = request.get("terminal", 0)
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= protocol.MAX_TERMINAL:
        raise AgentError("bad_request", f"terminal={number!r} is invalid; use a terminal number (0 is the first)")
    return number


def _grant_socket(path: os.PathLike[str], web_user: str) -> None:
    """Let the web tier's group, and only it (and root), connect to the agent."""
    try:
        gid = grp.getgrnam(web_user).gr_gid
    except KeyError:
        gid = 0
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)


async def run(cfg: settings.Settings) -> None:
    agent = Agent(cfg)
    server = await agent.start()
    stop, hand_over = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: (hand_over.set(), stop.set()))
    print(f"agent ready on {cfg.agent_socket}", flush=True)
    await stop.wait()
    server.close()
    cfg.agent_socket.unlink(missing_ok=True)
    if hand_over.is_set():
        log.info("agent stopped for a restart in place: %d sandbox(es) left to the next agent", len(agent.sandboxes))
        return
    await agent.shutdown()
    log.info("agent stopped")


def main() -> int:
    cfg = daemon.prepare("agent", "it creates namespaces, cgroups and mounts")
    if cfg is None:
        return 2
    try:
        asyncio.run(run(cfg))
    except NetworkError as exc:
        print(f"playground agent: cannot set up sandbox networking: {exc}", flush=True)
        return 2
    return 0
