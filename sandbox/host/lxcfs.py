"""lxcfs, the FUSE filesystem that shows each sandbox its own limits in /proc and /sys.

lxcfs (Debian's ``lxcfs`` package) answers a read of its ``proc/meminfo``, ``cpuinfo``, ``stat``,
``uptime``, ``diskstats``, ``swaps``, ``loadavg`` and ``sys/devices/system/cpu`` from the cgroups and
pid namespace of the process that reads: a sandbox that has them bound over its own sees its memory
limit as ``MemTotal``, ``ceil(cpus)`` processors and its own age as uptime, live as usage changes.

The agent runs one lxcfs of its own (:class:`Lxcfs`), mounted at ``<data>/lxcfs`` (so test stacks and
a system lxcfs at /var/lib/lxcfs never share one), in a session of its own: it outlives an agent that
is killed or restarted in place, and the next agent adopts it (its pidfile); the agent's stop ends it.
:meth:`Lxcfs.keep`, every few seconds, starts a new one when it died or stopped answering, and binds
its files into every running sandbox whose /proc/meminfo is not its own (:func:`rebind`): those of a
dead lxcfs, whose reads fail with ENOTCONN until then, and those started while it did not answer.
A new sandbox is given the files only if lxcfs answers at that moment (:meth:`Lxcfs.view`); otherwise
it starts with the host's view, and the agent logs why, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.host.mounts import MountError, attach, enter_mount_namespace, read_only_clone, unmount

log = logging.getLogger("sandbox.agent")

# What a sandbox gets from lxcfs, relative to its mount point and to the sandbox's root. runc allows
# these bind mounts over /proc files (and no others but /proc/slabinfo and /proc/net/dev).
VIEWS = (
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/loadavg",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "sys/devices/system/cpu",
)
# --enable-cfs: processors from the CPU quota (ceil(quota / period)), not only the cpuset;
# --enable-loadavg: each sandbox's own load average (a thread counts the tasks of the sandboxes
# whose /proc/loadavg was read, every few seconds).
OPTIONS = ("--foreground", "--enable-cfs", "--enable-loadavg")
ANSWER_TIMEOUT = 2.0  # seconds a read of proc/meminfo may take before lxcfs counts as hung
START_TIMEOUT = 5.0  # seconds a new lxcfs has to answer
STOP_TIMEOUT = 3.0  # seconds lxcfs has to exit on SIGTERM before SIGKILL
CHECK_INTERVAL = 5.0  # seconds between checks while the agent runs


def answers(mountpoint: Path) -> bool:
    """Whether an lxcfs mounted at ``mountpoint`` serves its meminfo (blocks while it hangs)."""
    try:
        with open(mountpoint / "proc/meminfo") as meminfo:
            return meminfo.read(16).startswith("MemTotal:")
    except OSError:  # not mounted (ENOENT) or its daemon is gone (ENOTCONN)
        return False


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def mounted_device(mountinfo: Path, point: str) -> str | None:
    """The device (``major:minor``) of the topmost mount at ``point`` in a ``mountinfo`` file, or
    None if nothing is mounted there. Every lxcfs instance is a new FUSE connection, so a new device."""
    device = None
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if fields[4] == point:
            device = fields[2]
    return device


class Lxcfs:
    """This agent's lxcfs: started, adopted, checked, restarted and stopped by the agent."""

    def __init__(self, mountpoint: Path, state_dir: Path, enabled: bool = True) -> None:
        self.mountpoint = mountpoint
        self.pidfile = state_dir / "lxcfs.pid"
        self.logfile = state_dir / "lxcfs.log"
        self.enabled = enabled
        self.answering = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reported: str | None = None  # the last reason logged for sandboxes seeing the host's view
        self._task: asyncio.Task[None] | None = None

    async def view(self) -> Path | None:
        """The mount point to bind into a new sandbox, or None (the host's view) if lxcfs does not
        answer now. A dead lxcfs's files would bind and then fail every read with ENOTCONN, so it is
        asked each time (a read of its meminfo, well under a millisecond); one that stopped answering
        is replaced by the next :meth:`keep`, which binds the new one into every running sandbox."""
        if not self.answering:
            return None
        if await self.answers_now():
            return self.mountpoint
        self.answering = False
        self._report(
            f"lxcfs at {self.mountpoint} stopped answering; a new one is started within {CHECK_INTERVAL:.0f} s"
        )
        return None

    async def keep(self, running: Callable[[], list[int]]) -> None:
        """Make sure lxcfs answers (:meth:`check`), then bind its files into every running sandbox
        (``running()``: the host pids of their first processes) whose /proc/meminfo is not this
        lxcfs's: a dead lxcfs's (reads fail with ENOTCONN), or the kernel's, for a sandbox started
        while lxcfs did not answer. Never raises; what fails is logged and tried again next time."""
        if not await self.check():
            return
        stale = await asyncio.to_thread(self._without_view, running())
        if stale:
            await rebind_all(self.mountpoint, stale)

    def _without_view(self, pids: list[int]) -> list[int]:
        """Those of ``pids`` whose mount namespace has no mount of this lxcfs at /proc/meminfo."""
        ours = mounted_device(Path("/proc/self/mountinfo"), str(self.mountpoint))
        stale = []
        for pid in pids:
            try:
                theirs = mounted_device(Path(f"/proc/{pid}/mountinfo"), "/proc/meminfo")
            except OSError:
                continue  # ended meanwhile
            if ours is None or theirs != ours:
                stale.append(pid)
        return stale

    async def check(self) -> bool:
        """Make sure lxcfs answers: adopt one that does, or start a new one; True if one answers.
        Never raises: a failure is logged once, and new sandboxes get the host's view until a
        later check succeeds."""
        if not self.enabled:
            return False
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # reaped; its mount (if any) no longer answers
        if await self.answers_now():
            self._report(None)
            self.answering = True
            return True
        if self.answering:
            log.warning("lxcfs at %s stopped answering; starting a new one", self.mountpoint)
        elif self._reported is None:
            log.info("starting lxcfs at %s", self.mountpoint)
        self.answering = False
        try:
            problem = await asyncio.to_thread(self._start)
        except OSError as exc:  # the old mount would not go, the mount point cannot be made...
            problem = f"lxcfs could not be started: {exc}"
        if problem is None:
            problem = await self._wait_until_answering()
        self._report(problem)
        self.answering = problem is None
        return self.answering

    async def answers_now(self) -> bool:
        """Whether lxcfs answers now (a read of its meminfo within ANSWER_TIMEOUT)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(answers, self.mountpoint), ANSWER_TIMEOUT)
        except TimeoutError:
            return False  # the thread stays blocked until the hung lxcfs is killed

    async def _wait_until_answering(self) -> str | None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if await self.answers_now():
                return None
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                self._process = None
                return f"lxcfs exited with status {code} at start (see {self.logfile})"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self._kill)
        return f"lxcfs did not answer within {START_TIMEOUT:.0f} s of its start (see {self.logfile})"

    def _start(self) -> str | None:
        """Replace whatever is at the mount point by a new lxcfs; the reason if it cannot start."""
        binary = shutil.which("lxcfs")
        if binary is None:
            return "lxcfs is not installed (make deps, or apt-get install lxcfs)"
        if not os.path.exists("/dev/fuse"):
            return "/dev/fuse is missing (modprobe fuse)"
        self._kill()
        while unmount(self.mountpoint):  # a dead or hung lxcfs's mount, detached
            pass
        self.mountpoint.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.logfile, "ab") as out:
            self._process = subprocess.Popen(
                [binary, *OPTIONS, "--pidfile", str(self.pidfile), str(self.mountpoint)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not ended with the agent: sandboxes keep their view across restarts
            )
        return None

    def _pid(self) -> int | None:
        """The running lxcfs of this mount point (ours or an earlier agent's), from its pidfile."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        is_ours = (
            bool(cmdline) and os.path.basename(cmdline[0]) == b"lxcfs" and str(self.mountpoint).encode() in cmdline
        )
        return pid if is_ours else None

    def _kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to this mount point's lxcfs (by its pidfile, or our child) and wait, up to
        STOP_TIMEOUT, until it is gone."""
        pid = self._pid()
        if pid is None and self._process is not None and self._process.poll() is None:
            pid = self._process.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                if self._process is not None:
                    self._process.poll()  # reaps our child, so that it stops being alive
                time.sleep(0.02)
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def _report(self, problem: str | None) -> None:
        """Log a change: sandboxes now start with the host's view (and why), or with their own again."""
        if problem == self._reported:
            return
        if problem is None:
            log.info("lxcfs answers at %s: new sandboxes see their own limits in /proc", self.mountpoint)
        else:
            log.warning("new sandboxes see the host's memory, processors and uptime in /proc: %s", problem)
        self._reported = problem

    def start_watching(self, running: Callable[[], list[int]], interval: float = CHECK_INTERVAL) -> None:
        """:meth:`keep` lxcfs every ``interval`` seconds."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._watch(running, interval), name="lxcfs")

    async def _watch(self, running: Callable[[], list[int]], interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keep(running)
            except Exception:  # never let the watch end: the next round tries again
                log.exception("checking lxcfs at %s failed", self.mountpoint)

    async def stop(self) -> None:
        """End lxcfs (after the sandboxes using it are gone) and remove its mount point."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        # Unmounted first, lxcfs's FUSE connection ends and it exits at once on SIGTERM; mounted,
        # it took about 1.4 s to (measured by timing the agent's stop).
        while unmount(self.mountpoint):
            pass
        self._kill(signal.SIGTERM)
        self._kill(signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.mountpoint.rmdir()
        self.pidfile.unlink(missing_ok=True)
        self.answering = False


REBIND_TIMEOUT = 10.0  # seconds the helper has to bind the views into one sandbox


def rebind(pid: int, mountpoint: Path) -> None:
    """Bind lxcfs's VIEWS from ``mountpoint`` over /proc/... and /sys/... of the mount namespace of
    the host process ``pid`` (a sandbox's first process), each in place of what was there (a dead
    lxcfs's file, or nothing). It enters that namespace, so it must run in a process of its own,
    single-threaded: ``python -m sandbox.host.lxcfs PID MOUNTPOINT``. MountError if one fails, or if
    ``pid`` shares this process's mount namespace (a host process: lxcfs's files over the host's own
    /proc would hang every reader there, lxcfs included)."""
    if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
        raise MountError(errno.EINVAL, f"process {pid} is not in a sandbox: it shares the host's mount namespace")
    clones = {view: read_only_clone(mountpoint / view) for view in VIEWS}  # in the host's namespace
    enter_mount_namespace(pid)  # now / is the sandbox's root
    for view, fd in clones.items():
        target = Path("/", view)
        while unmount(target):  # a dead lxcfs's file: reading it gave ENOTCONN
            pass
        attach(fd, target, f"lxcfs's {view}")
        os.close(fd)


async def rebind_all(mountpoint: Path, pids: list[int]) -> None:
    """:func:`rebind` each of ``pids`` (a sandbox's first process) in a helper process, one after the
    other; a failure (a sandbox that ended meanwhile, say) is logged and the others still done."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for pid in pids:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox.host.lxcfs",
            str(pid),
            str(mountpoint),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), REBIND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            output = b"timed out"
            await proc.wait()
        if proc.returncode:
            log.warning("binding lxcfs's files into the sandbox of pid %d failed: %s", pid, output.decode().strip())
    if pids:
        log.info("bound lxcfs's files into %d running sandbox(es) that lacked them", len(pids))


def main(argv: list[str]) -> int:
    """``python -m sandbox.host.lxcfs PID MOUNTPOINT``: :func:`rebind`; 1 with the reason if it failed."""
    try:
        rebind(int(argv[0]), Path(argv[1]))
    except (MountError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
