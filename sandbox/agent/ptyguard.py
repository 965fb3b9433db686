"""The pseudo-terminal guard: stops a sandbox that holds more pseudo-terminals than its share.

Every pseudo-terminal of every devpts instance comes from one host-wide pool (``kernel.pty.max``;
instances outside the host's initial mount namespace, every sandbox's, may use all of it but
``kernel.pty.reserve``). A sandbox's own devpts is mounted with ``max=``, but root in a sandbox of
the docker profile may mount devpts instances of its own (its engine gives each container one),
without ``max``, and no seccomp filter sees a mount's file system type. Nothing in the kernel
divides the pool between sandboxes, so the agent does, from outside:

* every ``interval`` (a second) it reads ``/proc/sys/kernel/pty/nr``, the pool's use: one read;
* only while that is above ``share`` can any sandbox hold more than ``share``, so only then does
  it count what each live sandbox holds (:func:`ptys_held`), skipping every sandbox whose
  processes hold no more than ``share`` descriptors altogether (one directory listing per process);
* a sandbox holding more than ``share`` is stopped: a line saying why is written to its first
  terminal, the agent logs a warning, and every process of its cgroups gets SIGKILL. Its first
  process is among them and ends its pid namespace, so the sandbox's engine and containers die
  with it and their pseudo-terminals go back to the pool at once. The visitor sees the line, then
  the sandbox's end (as when its first shell exits); the session stays to be ended.

A pseudo-terminal is held through an open descriptor of either end: its master (an open of a
``ptmx``, device 5:2, whichever devpts instance it belongs to) or its slave (majors 136-143). Each
master descriptor counts one; each slave counts once however many descriptors share it. A
terminal with both ends open inside counts twice, so ``share`` is an upper bound on ends, not on
terminals. Descriptors in flight in unix sockets are held by no process and are not counted; the
memory they cost is the sandbox's (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.host import cgroups

log = logging.getLogger("sandbox.agent.ptyguard")

PTY_NR = Path("/proc/sys/kernel/pty/nr")
PTMX = os.makedev(5, 2)  # TTYAUX_MAJOR, the ptmx of every devpts instance
SLAVE_MAJORS = range(136, 144)  # UNIX98_PTY_SLAVE_MAJOR and the 7 after it (NR_UNIX98_PTY_MAX = 1 << 20)
TIOCGPTPEER = 0x5441  # a new descriptor of a master's slave end
CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class Watched:
    """One live sandbox as the guard sees it: its ids and the master of its first terminal."""

    sandbox_id: str
    runtime_id: str
    terminal_fd: int | None


def ptys_in_use(path: Path = PTY_NR) -> int:
    """The pseudo-terminals of every devpts instance of the host in use now."""
    return int(path.read_text())


def descriptors(pids: Iterable[int]) -> int:
    """How many descriptors the processes ``pids`` hold together (processes gone count none)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


def ptys_held(pids: Iterable[int]) -> int:
    """Pseudo-terminal ends the processes ``pids`` hold open: each master descriptor, and each
    slave once (by its devpts instance and index). Processes or descriptors gone meanwhile count none."""
    masters = 0
    slaves: set[tuple[int, int]] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for entry in os.scandir(f"/proc/{pid}/fd"):
                try:
                    found = os.stat(entry.path)
                except OSError:
                    continue
                if not stat.S_ISCHR(found.st_mode):
                    continue
                if found.st_rdev == PTMX:
                    masters += 1
                elif os.major(found.st_rdev) in SLAVE_MAJORS:
                    slaves.add((found.st_dev, found.st_rdev))
    return masters + len(slaves)


def stop_message(held: int, share: int) -> str:
    """What the guard writes to a stopped sandbox's first terminal, and logs."""
    return (
        f"this sandbox held {held} pseudo-terminal ends, more than the {share} one sandbox may hold "
        "(PLAYGROUND_SANDBOX_PTYS_HELD); the host stopped it so that other sandboxes can still open terminals"
    )


def tell(terminal_fd: int | None, text: str) -> None:
    """Write ``text`` on its own line to the terminal whose master is ``terminal_fd``, through a
    new descriptor of its slave end (so the visitor reads it as output); never blocks or raises."""
    if terminal_fd is None:
        return
    with contextlib.suppress(OSError):
        peer = fcntl.ioctl(terminal_fd, TIOCGPTPEER, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(peer, f"\r\n[playground] {text}\r\n".encode())
        finally:
            os.close(peer)


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL every process of ``pids`` (those gone meanwhile are skipped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(eq=False)
class PtyGuard:
    """Stops every live sandbox (from ``live``) whose processes, found in the cgroups under
    ``cgroup_parent``, hold more than ``share`` pseudo-terminal ends while the host's pool is in use
    beyond ``share``."""

    share: int
    cgroup_parent: str
    live: Callable[[], list[Watched]]
    pty_nr: Path = PTY_NR
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def offenders(self, sandboxes: list[Watched]) -> list[tuple[Watched, int, set[int]]]:
        """Of ``sandboxes``, those holding more than ``share`` pseudo-terminal ends, with how many and
        their processes (blocking; one read while the pool's use is at most ``share``)."""
        if ptys_in_use(self.pty_nr) <= self.share:
            return []
        found = []
        for sandbox in sandboxes:
            pids = cgroups.processes(cgroups.sandbox_dirs(self.cgroup_parent, sandbox.runtime_id), nested=True)
            if descriptors(pids) <= self.share:
                continue
            held = ptys_held(pids)
            if held > self.share:
                found.append((sandbox, held, pids))
        return found

    async def check(self) -> list[str]:
        """One round: stop each offender that is still live (its terminal as it is now); the ids of
        the sandboxes stopped."""
        found = await asyncio.to_thread(self.offenders, self.live())
        current = {s.sandbox_id: s for s in self.live()}
        stopped = []
        for sandbox, held, pids in found:
            now = current.get(sandbox.sandbox_id)
            if now is None or now.runtime_id != sandbox.runtime_id:
                continue  # destroyed meanwhile
            text = stop_message(held, self.share)
            log.warning("stopping sandbox %s (%s): %s", now.sandbox_id, now.runtime_id, text)
            tell(now.terminal_fd, text)
            kill_all(pids)
            stopped.append(now.sandbox_id)
        return stopped

    def start_watching(self, interval: float = CHECK_INTERVAL) -> None:
        """:meth:`check` every ``interval`` seconds, until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(interval), name="ptyguard")

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:  # never let the watch end: the next round tries again
                log.exception("checking the sandboxes' pseudo-terminals failed")

    def stop(self) -> None:
        """End the watch (a round under way is cancelled at its next await)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
