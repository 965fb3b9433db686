"""The terminals' CPU group: a visitor's keystrokes are not held up by their own sandbox's work.

The kernel shares the CPUs between cgroups, each as one: a sandbox whose engine, containers or lab
checks just used the CPUs waits its turn, and the shell in it with them, so every keystroke echoes
late while a class runs Docker (the classroom bench measured it). Where the cpu controller has a
cgroup v1 hierarchy of its own, the agent therefore moves each terminal's shell, in that hierarchy
(and in cpuacct's, to count its CPU time) only, to a second cpu cgroup of its sandbox,
``<parent>-terminals/<id>`` (:func:`sandbox.host.cgroups.place_shell`): with the sandbox's own CPU
quota, under a parent that weighs PLAYGROUND_TERMINAL_CPU_WEIGHT (100 by default) where the
sandboxes' parent weighs PLAYGROUND_SANDBOX_CPU_WEIGHT (10). What the visitor starts from the shell
runs there too; what the sandbox starts by itself (its engine, the containers the engine runs, lab
scripts) stays in the sandbox's cgroup. Memory, pids and freezer cgroups do not move: every limit
but the CPU quota is one for the whole sandbox, and the CPU quota holds for the terminals and for
the rest each (docs/security.md). On cgroup v2 a process has one cgroup for every controller, and
the shells stay where they are.

That weight is for waking up to a keystroke, not for work: a shell that echoes, completes a word or
starts a short command uses a few milliseconds. A watcher reads each sandbox's terminals cgroup's
CPU time every WATCH_INTERVAL; a cgroup that used more than CPU_BUDGET of one CPU over it (a busy
loop typed in the shell, a build started from it) has every process moved back to the sandbox's own
cpu cgroup (:func:`sandbox.host.cgroups.evict_shells`) but the shells that sleep (at their prompt,
or waiting for the command they started); with more than MOVE_ALL_MAX processes there, only those
that run (each move holds back forks and exits host-wide, and sleeping processes use no CPU). Over
budget again in the next round, the shells go too, and from the third every process; shells return
only once back at their prompt, and no sooner than RETURN_AFTER later. So a busy loop
outweighs the other sandboxes' engines for two intervals at most, not for as long as it runs
(docs/security.md).

The shell is found when a viewer attaches to a terminal: the leader of the terminal's foreground
process group, once it waits for input (a shell at its prompt). Not before: the docker image's first
program starts the engine and then becomes the shell in the same process, and an engine started
after the move would run in the terminals' group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sandbox.host import cgroups

log = logging.getLogger("sandbox.agent.shells")

PLACE_TIMEOUT = 30.0  # seconds a terminal's shell may take to reach its prompt after an attach
PLACE_INTERVAL = 0.1
WATCH_INTERVAL = 0.2  # seconds between two readings of the terminals cgroups' CPU time
CPU_BUDGET = 0.25  # the share of one CPU a sandbox's terminals cgroup may use over WATCH_INTERVAL
MOVE_ALL_MAX = 64  # processes in a terminals cgroup beyond which a first eviction moves only those running
RETURN_AFTER = 1.0  # seconds an evicted shell stays in its sandbox's own cgroup at least
# The system calls a shell waits for input in (read, poll, select, pselect6, ppoll), by machine.
WAITING_SYSCALLS = {"x86_64": {0, 7, 23, 270, 271}, "aarch64": {63, 72, 73}}


def waits_for_input(pid: int, machine: str | None = None) -> bool:
    """Whether process ``pid`` sleeps in one of the system calls a shell waits for input in (from
    ``/proc/<pid>/syscall``); True on a machine not listed, where this cannot be told."""
    waiting = WAITING_SYSCALLS.get(machine or platform.machine())
    if waiting is None:
        return True
    try:
        number = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return number.isdigit() and int(number) in waiting


def runs(pid: int) -> bool:
    """Whether process ``pid`` is running or waiting to run now (state R in ``/proc/<pid>/stat``);
    False if it is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "R"


def everything(pid: int) -> bool:
    """Every process (see :meth:`ShellPlacer._evict`)."""
    return True


def _chosen(staying: frozenset[int], going: frozenset[int], all_others: bool, pid: int) -> bool:
    """Whether :meth:`ShellPlacer._evict` moves ``pid``: never a shell ``staying``, always one
    ``going``, any other with ``all_others``, else only if it runs."""
    if pid in staying:
        return False
    return pid in going or all_others or runs(pid)


def cgroup_lines(pid: int) -> list[str]:
    """The lines of ``/proc/<pid>/cgroup`` (``id:controllers:path``); none if the process is gone."""
    try:
        return Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []


class ShellPlacer:
    """Moves terminal shells to their sandbox's cgroup in the terminals' parent, and back when they
    work (see the module)."""

    def __init__(self, cgroup_parent: str, weight: int) -> None:
        self.cgroup_parent = cgroup_parent
        self.weight = weight  # 0: off
        self.enabled = False
        self.hierarchies: tuple[Path, ...] = ()  # the cpu hierarchy, then the cpuacct one if another
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._shells: dict[str, set[int]] = {}  # sandbox id: the shells placed
        self._evicted: dict[str, tuple[float, set[int]]] = {}  # sandbox id: (since when, its shells)
        self._usage: dict[str, tuple[float, int]] = {}  # sandbox id: (when, its terminals' CPU time in ns)
        self._over: dict[str, int] = {}  # sandbox id: rounds in a row its terminals were over budget

    def start(self) -> None:
        """Make the terminals' parent cgroup with its weight, where the host allows it, and start the
        watcher (on the running event loop); logs which."""
        if self.weight == 0:
            log.info("PLAYGROUND_TERMINAL_CPU_WEIGHT=0: terminal shells stay in their sandbox's cpu cgroup")
            return
        hierarchy, accounting = cgroups.separate_cpu_hierarchy(), cgroups.accounting_hierarchy()
        if hierarchy is None or accounting is None:
            log.info(
                "cpu or cpuacct shares its cgroup with other controllers here: terminal shells stay in their sandbox's"
            )
            return
        parent = cgroups.terminals_parent(self.cgroup_parent)
        try:
            where = cgroups.set_parent_cpu_weight(parent, self.weight)
        except OSError as exc:
            log.warning("could not make the terminals' cpu cgroup %s: %s; shells stay in their sandbox's", parent, exc)
            return
        self.enabled = where is not None
        self.hierarchies = (hierarchy,) if accounting == hierarchy else (hierarchy, accounting)
        if self.enabled:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="terminals' CPU watcher")
        log.info("terminal shells go to %s, CPU weight %d", where, self.weight)

    def place_soon(self, runtime_id: str, fd: int) -> None:
        """Move the shell of the terminal whose PTY master is ``fd`` (in sandbox ``runtime_id``) once it
        is at its prompt, within PLACE_TIMEOUT; nothing if it is there already or being waited for."""
        key = (runtime_id, fd)
        if not self.enabled or key in self._tasks:
            return
        task = asyncio.create_task(self._place(runtime_id, fd), name=f"place shell {runtime_id}")
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    async def _place(self, runtime_id: str, fd: int) -> None:
        own = f":/{self.cgroup_parent}/{runtime_id}"
        placed = f":/{cgroups.terminals_parent(self.cgroup_parent)}/{runtime_id}"
        deadline = asyncio.get_running_loop().time() + PLACE_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            try:
                pid = os.tcgetpgrp(fd)
            except OSError:  # the terminal was closed
                return
            lines = cgroup_lines(pid)
            if any(line.endswith(placed) for line in lines):
                return
            # Only a process of this sandbox (its memory or pids cgroup says so), waiting at a prompt.
            if any(line.endswith(own) for line in lines) and waits_for_input(pid):
                self._shells.setdefault(runtime_id, set()).add(pid)
                evicted = runtime_id in self._evicted
                if evicted:  # the watcher returns it in its time
                    self._evicted[runtime_id][1].add(pid)
                if not evicted:
                    try:  # in a thread: a move into a cgroup waits for the kernel's RCU, 10 ms or more on a busy host
                        await asyncio.to_thread(cgroups.place_shell, self.cgroup_parent, runtime_id, pid)
                    except OSError as exc:
                        log.info("the shell %d of %s was not moved to the terminals' cgroup: %s", pid, runtime_id, exc)
                return
            await asyncio.sleep(PLACE_INTERVAL)
        log.info("the shell of a terminal of %s never waited at a prompt; it stays in its sandbox's cgroup", runtime_id)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                for move in self.sweep():  # in a thread: a move waits for the kernel's RCU (see _place)
                    await asyncio.to_thread(move)
            except Exception:  # the watcher must outlive any one surprise
                log.exception("the terminals' CPU watcher failed a round; it goes on")

    def sweep(self, now: float | None = None) -> list[Callable[[], object]]:
        """One round of the watcher: find the terminals cgroups that used more than their CPU_BUDGET
        since the last round, and the evicted shells back at their prompt after RETURN_AFTER; returns
        the moves to make, in order, each a function to run in a thread. What is read here is a few
        small files, on the event loop: a thread of its own for it slowed the learners' echo (the
        agent's loop waited for the interpreter's lock). ``now``: time.monotonic(), given by tests."""
        now = time.monotonic() if now is None else now
        usages = cgroups.terminals_usage(self.cgroup_parent, self.hierarchies[-1])
        moves: list[Callable[[], object]] = []
        over = {}
        for runtime_id, used in usages.items():
            then, before = self._usage.get(runtime_id, (now, used))
            self._usage[runtime_id] = (now, used)
            if used - before > CPU_BUDGET * max(now - then, WATCH_INTERVAL) * 1e9:
                over[runtime_id] = self._over.get(runtime_id, 0) + 1
                moves.append(self._evict(runtime_id, now, over[runtime_id]))
        self._over = over
        for gone in self._usage.keys() - usages.keys():  # the sandbox was removed
            del self._usage[gone]
            self._shells.pop(gone, None)
            self._evicted.pop(gone, None)
        return moves + self._return_shells(now)

    def _evict(self, runtime_id: str, now: float, rounds: int) -> Callable[[], object]:
        """The move back of what works in the sandbox's terminals cgroup, over budget ``rounds`` rounds
        in a row: on the first, every process but the shells that sleep (at their prompt or waiting for
        their command), or where there are more than MOVE_ALL_MAX, only those that run (each move holds
        back forks and exits host-wide, and a thousand sleeping processes use no CPU); on the second,
        the shells too; from the third, every process (many that each run briefly)."""
        shells = self._shells.get(runtime_id, set())
        held = frozenset(shells if rounds > 1 else (pid for pid in shells if runs(pid)))
        if rounds > 2:
            chosen: Callable[[int], bool] = everything
        else:
            terminals = self.hierarchies[0] / cgroups.terminals_parent(self.cgroup_parent) / runtime_id
            count = len(cgroups.processes([terminals]))
            chosen = partial(_chosen, frozenset(shells) - held, held, count <= MOVE_ALL_MAX)
        if held:  # held from this eviction on, with those held already
            self._shells[runtime_id] = shells - held
            self._evicted[runtime_id] = (now, self._evicted.get(runtime_id, (now, set()))[1] | held)
        return partial(self._move_back, runtime_id, chosen)

    def _move_back(self, runtime_id: str, chosen: Callable[[int], bool]) -> None:
        moved = cgroups.evict_shells(self.cgroup_parent, runtime_id, self.hierarchies, chosen)
        log.info(
            "the terminals of %s worked beyond their CPU budget: %d processes back in its cgroup",
            runtime_id,
            len(moved),
        )

    def _return_shells(self, now: float) -> list[Callable[[], object]]:
        """The moves of the evicted shells that are back at their prompt, RETURN_AFTER or more after."""
        moves: list[Callable[[], object]] = []
        for runtime_id, (since, pids) in list(self._evicted.items()):
            if now - since < RETURN_AFTER:
                continue
            own = f":/{self.cgroup_parent}/{runtime_id}"
            for pid in list(pids):
                if not any(line.endswith(own) for line in cgroup_lines(pid)):  # gone, or its pid is another's
                    pids.discard(pid)
                elif waits_for_input(pid):
                    moves.append(partial(self._place_again, runtime_id, pid))
                    self._shells.setdefault(runtime_id, set()).add(pid)
                    pids.discard(pid)
            if not pids:
                del self._evicted[runtime_id]
        return moves

    def _place_again(self, runtime_id: str, pid: int) -> None:
        with contextlib.suppress(OSError):  # it has exited meanwhile
            cgroups.place_shell(self.cgroup_parent, runtime_id, pid)

    def close(self) -> None:
        """Stop waiting for shells and watching them (the agent is stopping)."""
        for task in [*self._tasks.values(), *([self._watcher] if self._watcher else [])]:
            task.cancel()
