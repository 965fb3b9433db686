"""The runc driver: turns a SandboxSpec and an image into a running sandbox, and back into nothing.

Creation is a flat checklist (take over the place the network pool prepared: its directory with
the id range's writable layer and the pinned namespaces; size the layer, overlayfs, bundle,
``runc run --detach`` with a console socket, receive the PTY master). Destruction undoes every
step, tolerates steps that never happened, and is safe to repeat: it is also how a crash half-way
is repaired. Each sandbox maps root to an id range of its own (:mod:`sandbox.host.idranges`), free
again once its layer is unmounted at destroy, and runs in user and network namespaces that range
owns (:mod:`sandbox.host.userns`).

runc is given no ``rlimits``: it would set them on the container's first process from outside
(prlimit), which needs CAP_SYS_RESOURCE over a user namespace root does not own. runc runs under
``prlimit`` instead, and its processes inherit the limits (see :func:`limits_prefix`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, Protocol

from sandbox.host import cgroups, idranges, mounts, userns
from sandbox.runtime import layers
from sandbox.runtime.bundle import SandboxSpec, build_config
from sandbox.runtime.execs import bundle_process, exited, limits_prefix
from sandbox.runtime.layers import Image
from sandbox.wire.ids import range_start
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.runtime.runc")

RUNC_TIMEOUT = 20.0
CGROUP_DRAIN_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0  # for a killed sandbox's first process to exit (then runc delete --force kills it again)
MAX_SOCKET_PATH = 107


class SandboxError(Exception):
    """Creating or destroying a sandbox failed; the message says which step and why."""


class Started(NamedTuple):
    """A sandbox just started: its first terminal's PTY master (the caller owns the fd) and the
    first host id of its id range (root inside)."""

    terminal: int
    ids: int


class Lease(Protocol):
    """A place made ready for one sandbox (a :class:`sandbox.network.pool.Lease`): a directory with
    its range's layer (from ``ids``) and its pinned user namespaces, and its network."""

    @property
    def netns(self) -> Path: ...

    @property
    def address(self) -> ipaddress.IPv4Address: ...

    @property
    def directory(self) -> Path: ...

    @property
    def ids(self) -> int: ...

    @property
    def userns(self) -> Path: ...

    @property
    def idmap(self) -> Path: ...

    def moved_to(self, directory: Path) -> Lease:
        """This lease after ``os.rename(self.directory, directory)``."""
        ...


class RuncRuntime:
    """Creates and destroys sandboxes under ``state_dir`` with the runc binary ``runc``, each in an id
    range above ``uid_base`` (the image store's range)."""

    def __init__(self, state_dir: Path, cgroup_parent: str, uid_base: int, runc: str = "runc") -> None:
        self.cgroup_parent = cgroup_parent
        self.uid_base = uid_base
        self.sandboxes_dir = state_dir / "sandboxes"
        self.runc_root = state_dir / "runc"
        self.runc = runc
        self.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        self.runc_root.mkdir(parents=True, exist_ok=True)
        # Search-only for others: runc's init, already root-in-userns (an unprivileged uid on the
        # host), must walk to its bundle; nobody can list what is here.
        for path in (state_dir, self.sandboxes_dir):
            os.chmod(path, 0o711)
        os.chmod(self.runc_root, 0o700)

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.sandboxes_dir / sandbox_id

    def check_host(self, images_dir: Path) -> None:
        """IdmapUnsupported (saying what is missing) unless this kernel can make idmapped mounts of
        ``images_dir``'s filesystem; the agent refuses to start without them."""
        images_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        namespace = idranges.userns_with_map(self.uid_base, range_start(self.uid_base, 0))
        try:
            mounts.check_idmapped_mounts(images_dir, namespace)
        finally:
            os.close(namespace)

    def ranges_held(self) -> dict[str, int]:
        """The first id of the range each sandbox of this runtime holds now, by runtime id (the record:
        its layer's tmpfs)."""
        held = idranges.taken(self.uid_base)
        return {p.parent.name: ids for p, ids in held.items() if p.parent.parent == self.sandboxes_dir}

    async def create(self, spec: SandboxSpec, image: Image, place: Lease, resolv_conf: str = "") -> Started:
        """Start the sandbox in the place the network pool made for it; returns its first terminal
        and range (see Started).

        The place's directory becomes the sandbox's; the caller still releases the lease (veth,
        netns, address) after ``destroy``.
        """
        directory = self.sandbox_dir(spec.sandbox_id)
        if directory.exists():
            raise SandboxError(f"sandbox {spec.sandbox_id} already exists on this host")
        os.rename(place.directory, directory)
        place = place.moved_to(directory)
        try:
            return await self._create_in(directory, spec, image, place, resolv_conf)
        except BaseException:
            await self.destroy(spec.sandbox_id)
            raise

    async def _create_in(
        self, directory: Path, spec: SandboxSpec, image: Image, place: Lease, resolv_conf: str
    ) -> Started:
        layer = directory / idranges.LAYER
        mounts.resize_tmpfs(layer, spec.storage_bytes, spec.layer_inodes)
        files = layers.write_layer(layer, spec.hostname, str(place.address), resolv_conf, place.ids, spec.hosts)
        spec = replace(
            spec,
            docker_data=layers.docker_data(layer),
            cgroup_parent=self.cgroup_parent,
            uid_base=place.ids,
            extra_files={**spec.extra_files, **files},
            netns=place.netns,
            userns=place.userns,
        )
        idmap = os.open(place.idmap, os.O_RDONLY | os.O_CLOEXEC)
        try:
            layers.mount_root(directory, image, idmap)
        finally:
            os.close(idmap)
        userns.unpin(place.idmap)  # the overlay holds its layers' idmapped clones now
        (directory / "config.json").write_text(json.dumps(build_config(spec)))
        console_path = directory / "console.sock"
        if len(str(console_path)) > MAX_SOCKET_PATH:
            raise SandboxError(
                f"console socket path {console_path} is too long for a unix socket; "
                "choose a shorter PLAYGROUND_DATA_DIR."
            )
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(console_path))
            listener.listen(1)
            await self._start(spec, directory, console_path, place.ids)
            return Started(_receive_fd(listener), place.ids)

    async def _start(self, spec: SandboxSpec, directory: Path, console_path: Path, ids: int) -> None:
        """``runc run --detach``; for the docker profile ``runc create``, then its cgroup directories
        given to its root (:func:`sandbox.host.cgroups.delegate`), then ``runc start``."""
        limits = limits_prefix(spec.nofile)
        bundle = ("--console-socket", str(console_path), "--bundle", str(directory), spec.sandbox_id)
        if not spec.docker:
            await self._runc("run", "--detach", *bundle, prefix=limits)
            return
        await self._runc("create", *bundle, prefix=limits)
        try:
            cgroups.delegate(self.cgroup_parent, spec.sandbox_id, ids)
        except OSError as exc:
            raise SandboxError(f"cannot give sandbox {spec.sandbox_id} its cgroups: {exc}") from None
        await self._runc("start", spec.sandbox_id, prefix=limits)

    async def exec_terminal(self, sandbox_id: str, number: int) -> tuple[int, int]:
        """Start another shell in the running sandbox (a tab); returns its PTY master and host pid.

        ``runc exec`` without ``--process`` copies the bundle's process (user, environment,
        working directory, capabilities, ``noNewPrivileges``; the container's seccomp filter and
        namespaces apply to it too), so only the command is given: the first process's; its
        limits come from the prefix, as the first process's did. With ``--tty`` the shell leads a
        session of its own on its new PTY.
        """
        directory = self.sandbox_dir(sandbox_id)
        try:
            args, nofile = bundle_process(directory, sandbox_id)
        except AgentError as exc:
            raise SandboxError(exc.message) from None
        console_path, pid_path = directory / f"console-{number}.sock", directory / f"terminal-{number}.pid"
        console_path.unlink(missing_ok=True)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(str(console_path))
                listener.listen(1)
                await self._runc(
                    "exec",
                    "--tty",
                    "--detach",
                    "--console-socket",
                    str(console_path),
                    "--pid-file",
                    str(pid_path),
                    sandbox_id,
                    *args,
                    prefix=limits_prefix(nofile),
                )
                fd = _receive_fd(listener)
            try:
                return fd, int(pid_path.read_text())
            except (OSError, ValueError) as exc:
                os.close(fd)
                raise SandboxError(f"runc exec in {sandbox_id} wrote no usable pid file: {exc}") from None
        finally:
            console_path.unlink(missing_ok=True)
            pid_path.unlink(missing_ok=True)

    async def kill_session(self, sandbox_id: str, leader: int, started: int) -> None:
        """SIGKILL the processes of the sandbox in the session that ``leader`` (a tab's shell,
        started at ``started`` clock ticks after boot) leads: the shell, its jobs and their children.

        Only processes in the sandbox's cgroups, in that session and no older than the shell are
        touched; if another process has the shell's pid now, nothing is. Returns when none is left.
        """
        for _ in range(100):
            members = session_members(self.cgroup_parent, sandbox_id, leader, started)
            if not members:
                return
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)
        raise SandboxError(f"the processes of the shell {leader} in {sandbox_id} keep coming back")

    async def destroy(self, sandbox_id: str) -> None:
        """Remove every trace of the sandbox: processes, runtime state, cgroups, mount, files."""
        directory = self.sandbox_dir(sandbox_id)
        if (self.runc_root / sandbox_id).exists():
            await self._stop(sandbox_id)
            try:
                await self._runc("delete", "--force", sandbox_id)
            except SandboxError as exc:
                if "does not exist" not in str(exc):
                    raise
        # Killed processes leave their cgroups only once reaped: wait for the stragglers.
        deadline = asyncio.get_running_loop().time() + CGROUP_DRAIN_TIMEOUT
        while (left := cgroups.remove(self.cgroup_parent, sandbox_id)) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if left:
            raise SandboxError(f"cgroups of sandbox {sandbox_id} are still busy: {', '.join(map(str, left))}")
        mounts.unmount(directory / "rootfs")  # the overlay first: it sits on the layer's tmpfs
        for point in mounts.mounts_under(directory):  # the layer last (deepest first): it frees the range
            mounts.unmount(point)
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():
            raise SandboxError(f"could not remove {directory}; see the agent log")

    async def _stop(self, sandbox_id: str) -> None:
        """SIGKILL the sandbox's first process and wait (``STOP_TIMEOUT`` at most) until it has exited,
        which ends every process of its pid namespace first.

        ``runc delete --force`` of a running sandbox kills it and then sleeps 100 ms before it first
        looks whether it is gone (runc 1.1's ``killContainer``), most of a destroy's time; of a
        stopped one it removes the state at once. The process is killed through a pidfd opened
        while its start time was still runc's, so not another process given its pid since."""
        pid = self.init_pid(sandbox_id)
        if pid is None:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if self.init_pid(sandbox_id) != pid:
                return  # it exited before the pidfd was opened: the pid may be another's now
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            try:
                await asyncio.wait_for(exited(pidfd), STOP_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "sandbox %s's first process %d has not exited %.0f s after SIGKILL", sandbox_id, pid, STOP_TIMEOUT
                )
        except ProcessLookupError:
            return
        finally:
            os.close(pidfd)

    def init_pids(self) -> list[int]:
        """The host pids of the first processes of the sandboxes runc runs (from its state files)."""
        pids = (_init_pid(state) for state in self.runc_root.glob("*/state.json"))
        return [pid for pid in pids if pid is not None]

    def init_pid(self, sandbox_id: str) -> int | None:
        """The host pid of the sandbox's first process while it runs, else None (see :func:`_init_pid`)."""
        return _init_pid(self.runc_root / sandbox_id / "state.json")

    def has_file(self, sandbox_id: str, path: str) -> bool:
        """Whether ``path`` (absolute, no symbolic links on its way) exists in the sandbox's own view of
        its files, looked up through its first process's root; False when runc does not run it."""
        pid = self.init_pid(sandbox_id)
        return pid is not None and os.path.lexists(f"/proc/{pid}/root/{path.lstrip('/')}")

    def known_ids(self) -> set[str]:
        """Ids of every sandbox with any trace on this host: directory, runtime state or cgroup."""
        ids = {p.name for p in self.sandboxes_dir.iterdir() if p.is_dir()}
        ids |= {p.name for p in self.runc_root.iterdir() if p.is_dir()}
        return ids | cgroups.all_sandbox_ids(self.cgroup_parent)

    async def _runc(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        """Run runc (after ``prefix``, a command that execs it) and wait for it to exit; its error
        output is read from a file afterwards.

        Waiting for the process, not for end-of-file on pipes, matters: the container's first
        process is forked by runc and could otherwise keep a pipe open after runc has exited.
        """
        with tempfile.TemporaryFile() as errors:
            proc = await asyncio.create_subprocess_exec(
                *prefix,
                self.runc,
                "--root",
                str(self.runc_root),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=errors,
            )
            try:
                await asyncio.wait_for(proc.wait(), RUNC_TIMEOUT)
            except TimeoutError:
                log.error(
                    "runc %s (pid %d) did not finish within %.0fs; runc processes now:\n%s",
                    args[0],
                    proc.pid,
                    RUNC_TIMEOUT,
                    _runc_processes(),
                )
                proc.kill()
                await proc.wait()
                raise SandboxError(f"runc {args[0]} did not finish within {RUNC_TIMEOUT:.0f}s") from None
            if proc.returncode != 0:
                errors.seek(0)
                message = errors.read(16384).decode(errors="replace").strip()
                raise SandboxError(f"runc {args[0]} failed: {message or f'exit status {proc.returncode}'}")


def _init_pid(state: Path) -> int | None:
    """The host pid of a sandbox's first process from runc's ``state``, if that process still runs;
    None while it is being created or deleted (or not there), and once it has exited.

    runc's state outlives the process (a sandbox whose init ended stays until it is destroyed), and
    the kernel hands its pid to a new process soon on a busy host: a pid whose start time is not the
    one runc recorded is another process's, maybe the host's own (lxcfs's files were once bound
    over the host's /proc by following such a pid)."""
    try:
        version = state.stat()
    except OSError:
        return None
    recorded = _recorded_init(str(state), version.st_mtime_ns, version.st_size)
    if recorded is None:
        return None
    pid, started = recorded
    running = process_stat(pid)
    return pid if running is not None and running[1] == started else None


@functools.lru_cache(maxsize=4096)
def _recorded_init(state: str, mtime_ns: int, size: int) -> tuple[int, int] | None:
    """The first process's pid and start time that runc's ``state`` file records, parsed once per
    version of the file (its modification time and size): the file holds the sandbox's whole
    configuration, tens of kilobytes, and the agent asks for every sandbox's first process every
    few seconds (lxcfs's watch), on its event loop, where every terminal's output waits meanwhile."""
    try:
        recorded = json.loads(Path(state).read_text())
        return int(recorded["init_process_pid"]), int(recorded["init_process_start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_stat(pid: int) -> tuple[int, int] | None:
    """The session id and start time (clock ticks after boot) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command, which may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None  # exited, awaiting its parent's wait: nothing left to kill
    return int(fields[3]), int(fields[19])


def session_members(cgroup_parent: str, sandbox_id: str, leader: int, started: int) -> list[int]:
    """Live processes of the sandbox in ``leader``'s session (``leader`` started at ``started``)."""
    own = process_stat(leader)
    if own is not None and own[1] != started:
        return []  # the shell is gone and its pid belongs to another process now
    pids = cgroups.processes(cgroups.sandbox_dirs(cgroup_parent, sandbox_id), nested=True)
    members = []
    for pid in pids:
        stat = process_stat(pid)
        if stat is not None and stat[0] == leader and stat[1] >= started:
            members.append(pid)
    return sorted(members)


def _runc_processes() -> str:
    """Every runc process with its state and kernel wait channel, for the log of a hang."""
    lines = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "runc" not in cmdline.split(" ", 1)[0]:
                continue
            state = (proc_dir / "stat").read_text().split(") ", 1)[1].split()[0]
            wchan = (proc_dir / "wchan").read_text()
        except OSError:
            continue
        lines.append(f"  pid {proc_dir.name} state {state} wchan {wchan}: {cmdline[:200]}")
    return "\n".join(lines) or "  (none)"


def _receive_fd(listener: socket.socket) -> int:
    """Accept runc's connection on the console socket and take the PTY master it sends."""
    listener.settimeout(5.0)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        raise SandboxError("runc started the sandbox but never sent its terminal") from None
    with conn:
        conn.settimeout(5.0)
        _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise SandboxError("runc connected to the console socket without sending a terminal")
    for extra in fds[1:]:
        os.close(extra)
    os.set_inheritable(fds[0], False)  # received fds come without close-on-exec
    return fds[0]
