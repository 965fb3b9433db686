"""The terminals' CPU group: a visitor's keystrokes are not held up by their own sandbox's work.

The kernel shares the CPUs between cgroups, each as one: a sandbox whose engine, containers or
lab checks just used the CPUs waits its turn, and the shell in it with them, so every keystroke
echoes late while a class runs Docker (the classroom bench measured it). Where the cpu controller
has a cgroup v1 hierarchy of its own, the agent therefore moves each terminal's shell, in that
hierarchy only, to a second cpu cgroup of its sandbox, ``<parent>-terminals/<id>``
(:func:`sandbox.host.cgroups.place_shell`): with the sandbox's own CPU quota, under a parent that
weighs PLAYGROUND_TERMINAL_CPU_WEIGHT where the sandboxes' parent weighs PLAYGROUND_SANDBOX_CPU_WEIGHT
(10). It is off by default (0): at 100, which keeps keystrokes quick under a class's load, a busy
loop typed in a shell outweighs every sandbox's engine ten to one (docs/security.md). What the visitor starts
from the shell runs there too; what the sandbox starts by itself (its engine, the containers the
engine runs, lab scripts) stays in the sandbox's cgroup. Memory, pids and freezer cgroups do not
move: every limit but the CPU quota is one for the whole sandbox, and the CPU quota holds for the
terminals and for the rest each (docs/security.md). On cgroup v2 a process has one cgroup for every
controller, and the shells stay where they are.

The shell is found when a viewer attaches to a terminal: the leader of the terminal's foreground
process group, once it waits for input (a shell at its prompt). Not before: the docker image's
first program starts the engine and then becomes the shell in the same process, and an engine
started after the move would run in the terminals' group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from pathlib import Path

from sandbox.host import cgroups

log = logging.getLogger("sandbox.agent.shells")

PLACE_TIMEOUT = 30.0  # seconds a terminal's shell may take to reach its prompt after an attach
PLACE_INTERVAL = 0.1
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


def cgroup_lines(pid: int) -> list[str]:
    """The lines of ``/proc/<pid>/cgroup`` (``id:controllers:path``); none if the process is gone."""
    try:
        return Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []


class ShellPlacer:
    """Moves terminal shells to their sandbox's cgroup in the terminals' parent (see the module)."""

    def __init__(self, cgroup_parent: str, weight: int) -> None:
        self.cgroup_parent = cgroup_parent
        self.weight = weight  # 0: off
        self.enabled = False
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}

    def start(self) -> None:
        """Make the terminals' parent cgroup with its weight, where the host allows it; logs which."""
        if self.weight == 0:
            log.info("PLAYGROUND_TERMINAL_CPU_WEIGHT=0: terminal shells stay in their sandbox's cpu cgroup")
            return
        if cgroups.separate_cpu_hierarchy() is None:
            log.info("the cpu controller shares its cgroup with others here: terminal shells stay in their sandbox's")
            return
        parent = cgroups.terminals_parent(self.cgroup_parent)
        try:
            where = cgroups.set_parent_cpu_weight(parent, self.weight)
        except OSError as exc:
            log.warning("could not make the terminals' cpu cgroup %s: %s; shells stay in their sandbox's", parent, exc)
            return
        self.enabled = where is not None
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
                try:  # in a thread: a move into a cgroup waits for the kernel's RCU, 10 ms or more on a busy host
                    await asyncio.to_thread(cgroups.place_shell, self.cgroup_parent, runtime_id, pid)
                except OSError as exc:
                    log.info("the shell %d of %s was not moved to the terminals' cgroup: %s", pid, runtime_id, exc)
                return
            await asyncio.sleep(PLACE_INTERVAL)
        log.info("the shell of a terminal of %s never waited at a prompt; it stays in its sandbox's cgroup", runtime_id)

    def close(self) -> None:
        """Stop waiting for shells (the agent is stopping)."""
        for task in list(self._tasks.values()):
            task.cancel()
