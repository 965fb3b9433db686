"""The terminals' CPU group (sandbox.agent.shells): which process is a terminal's shell at its prompt,
and its move, on this host's real cpu hierarchy, to its sandbox's cgroup beside the sandboxes' parent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.agent import shells
from sandbox.host import cgroups


def sweep(placer: shells.ShellPlacer) -> None:
    """One round of the placer's watcher, its moves made."""
    for move in placer.sweep():
        move()


def end_and_remove(pid: int, parent: str, runtime_id: str) -> None:
    """Kill the shell ``pid``, and whatever it left in the test's cgroups of ``runtime_id`` (a test
    that failed half way leaves its sleeps there), and remove those cgroups and their ``parent``."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (left := cgroups.remove(parent, runtime_id)) and time.monotonic() < deadline:
        for directory in left:
            with contextlib.suppress(OSError):  # gone meanwhile
                for process in (directory / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(process), signal.SIGKILL)
        time.sleep(0.05)
    cgroups.remove_parent(parent)


def at_prompt(pid: int) -> None:
    """Wait until the shell ``pid`` waits for input, 10 s at most."""
    deadline = time.monotonic() + 10
    while not shells.waits_for_input(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def shell_on_a_pty() -> Iterator[tuple[int, int]]:
    """An interactive shell on a new PTY, at its prompt: (its pid, the PTY master)."""
    pid, master = pty.fork()
    if pid == 0:
        # Ctrl-C must reach what the shell runs: a test run started in the background (`make test &`)
        # ignores SIGINT and SIGQUIT, and its commands would inherit that, so `yes` never ended.
        for number in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(number, signal.SIG_DFL)
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    at_prompt(pid)
    yield pid, master
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(master)


def test_a_shell_at_its_prompt_waits_for_input_and_a_busy_process_does_not(shell_on_a_pty: tuple[int, int]) -> None:
    assert shells.waits_for_input(shell_on_a_pty[0])
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        time.sleep(0.1)
        assert not shells.waits_for_input(busy.pid)
        assert shells.waits_for_input(busy.pid, machine="an unlisted machine")  # cannot be told: assumed
    finally:
        busy.kill()
        busy.wait()
    assert not shells.waits_for_input(busy.pid)  # gone


def test_an_attached_terminals_shell_moves_to_the_terminals_cpu_group_with_the_sandboxs_quota(
    shell_on_a_pty: tuple[int, int],
) -> None:
    hierarchy = cgroups.separate_cpu_hierarchy()
    if hierarchy is None:
        pytest.skip("the cpu controller has no v1 hierarchy of its own on this host")
    pid, master = shell_on_a_pty
    parent, runtime_id = f"playground-unit-{os.getpid()}", "deadbeef00000004"
    own = hierarchy / parent / runtime_id
    own.mkdir(parents=True)
    (own / "cpu.cfs_quota_us").write_text("30000")
    (own / "cgroup.procs").write_text(str(pid))  # the shell is in its sandbox's cpu cgroup, as runc puts it
    placer = shells.ShellPlacer(parent, 100)

    async def attach_twice() -> None:
        placer.start()
        placer.place_soon(runtime_id, master)
        placer.place_soon(runtime_id, master)  # a second viewer meanwhile: one wait
        assert len(placer._tasks) == 1
        await asyncio.gather(*placer._tasks.values())

    try:
        asyncio.run(attach_twice())
        terminals = hierarchy / cgroups.terminals_parent(parent)
        assert (terminals / "cpu.shares").read_text().strip() == "1024"  # weight 100
        assert (terminals / runtime_id / "cpu.cfs_quota_us").read_text().strip() == "30000"
        assert str(pid) in (terminals / runtime_id / "cgroup.procs").read_text().split()
        assert not (own / "cgroup.procs").read_text().split()
    finally:
        end_and_remove(pid, parent, runtime_id)
    assert not (hierarchy / parent).exists() and not (hierarchy / cgroups.terminals_parent(parent)).exists()


def test_a_shell_that_works_beyond_its_cpu_budget_goes_back_to_its_sandboxs_group_and_returns_at_its_prompt(
    shell_on_a_pty: tuple[int, int],
) -> None:
    hierarchy, accounting = cgroups.separate_cpu_hierarchy(), cgroups.accounting_hierarchy()
    if hierarchy is None or accounting is None:
        pytest.skip("cpu and cpuacct have no v1 hierarchies of their own on this host")
    pid, master = shell_on_a_pty
    parent, runtime_id = f"playground-unit-{os.getpid()}", "deadbeef00000006"
    own = hierarchy / parent / runtime_id
    for where in {own, accounting / parent / runtime_id}:  # as runc puts the sandbox's processes
        where.mkdir(parents=True)
        (where / "cgroup.procs").write_text(str(pid))
    terminals = hierarchy / cgroups.terminals_parent(parent) / runtime_id
    placer = shells.ShellPlacer(parent, 100)

    async def attach() -> None:
        placer.start()
        placer.close()  # the watcher: this test sweeps itself
        placer.place_soon(runtime_id, master)
        await asyncio.gather(*placer._tasks.values())

    def sweep_after(seconds: float) -> None:
        time.sleep(seconds)
        sweep(placer)

    def sweep_until(condition: Callable[[], bool]) -> None:
        """Sweep every WATCH_INTERVAL until ``condition`` holds, 10 s at most (a loaded host's busy
        process may get less than the budget in one interval)."""
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            sweep_after(shells.WATCH_INTERVAL)

    try:
        asyncio.run(attach())
        assert (terminals / "cgroup.procs").read_text().split() == [str(pid)]
        sweep(placer)
        for _ in range(5):  # keystrokes and short commands: well within the budget
            os.write(master, b"echo typed\n")
            sweep_after(shells.WATCH_INTERVAL)
        assert (terminals / "cgroup.procs").read_text().split() == [str(pid)]
        # A busy command goes, with what it started; its shell waiting for it stays.
        os.write(master, b"(sleep 60 &); yes > /dev/null\n")
        sweep_until(lambda: len((own / "cgroup.procs").read_text().split()) == 2)
        assert (terminals / "cgroup.procs").read_text().split() == [str(pid)]
        gone = {Path(f"/proc/{p}/comm").read_text().strip() for p in (own / "cgroup.procs").read_text().split()}
        assert gone == {"yes", "sleep"}
        os.write(master, b"\x03")
        at_prompt(pid)
        # Among more than MOVE_ALL_MAX processes, only what runs goes: sleeping ones cost no CPU.
        many = shells.MOVE_ALL_MAX + 6

        def names(where: Path) -> list[str]:
            """The names of the processes in ``where``; one that ends as it is read (a subshell of
            the loop below, once its sleep is forked) is left out."""
            found = []
            for p in (where / "cgroup.procs").read_text().split():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    found.append(Path(f"/proc/{p}/comm").read_text().strip())
            return found

        # Forked before any sweep: on a loaded host the forks outlast a WATCH_INTERVAL, and a sweep
        # among the first 64 would move them all (below MOVE_ALL_MAX, a busy group goes whole).
        os.write(master, b"for i in $(seq %d); do (sleep 60 &); done\n" % many)
        at_prompt(pid)
        deadline = time.monotonic() + 30  # a CI run's full load once kept them from all starting in 20 s
        while names(terminals).count("sleep") < many and time.monotonic() < deadline:
            time.sleep(0.05)
        forked = names(terminals).count("sleep")
        assert forked == many, f"the shell started {forked} of its {many} sleeps within 30 s"
        os.write(master, b"yes > /dev/null\n")
        sweep_until(lambda: "yes" in names(own))
        # All but a sleep just forked (running at that moment); the shell, which forked them, may go.
        assert names(terminals).count("sleep") > many - 5
        os.write(master, b"\x03")
        at_prompt(pid)
        os.write(master, b"pkill sleep\n")
        at_prompt(pid)
        deadline = time.monotonic() + 5
        while len((terminals / "cgroup.procs").read_text().split()) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.write(master, b"while :; do :; done\n")  # a busy loop in the shell itself
        sweep_until(lambda: not (terminals / "cgroup.procs").read_text().split())
        assert not (terminals / "cgroup.procs").read_text().split()
        assert str(pid) in (own / "cgroup.procs").read_text().split()
        assert str(pid) in (accounting / parent / runtime_id / "cgroup.procs").read_text().split()
        sweep_after(shells.RETURN_AFTER)  # still busy: it stays
        assert str(pid) in (own / "cgroup.procs").read_text().split()
        os.write(master, b"\x03")  # ^C: back at its prompt
        at_prompt(pid)
        sweep(placer)
        assert (terminals / "cgroup.procs").read_text().split() == [str(pid)]
        assert not placer._evicted
    finally:
        end_and_remove(pid, parent, runtime_id)
    sweep(placer)  # the sandbox is gone: the placer forgets it
    assert not placer._usage and not placer._shells


def test_a_process_of_another_cgroup_is_never_moved(shell_on_a_pty: tuple[int, int]) -> None:
    if cgroups.separate_cpu_hierarchy() is None:
        pytest.skip("the cpu controller has no v1 hierarchy of its own on this host")
    pid, master = shell_on_a_pty
    before = Path(f"/proc/{pid}/cgroup").read_text()
    placer = shells.ShellPlacer(f"playground-unit-{os.getpid()}", 100)
    placer.enabled = True  # as if started; no cgroup is made unless a shell of the sandbox is found

    async def attach() -> None:
        placer.place_soon("deadbeef00000005", master)
        await asyncio.sleep(0.3)
        placer.close()

    asyncio.run(attach())
    assert Path(f"/proc/{pid}/cgroup").read_text() == before
    hierarchy = cgroups.separate_cpu_hierarchy()
    assert hierarchy is not None and not (hierarchy / cgroups.terminals_parent(placer.cgroup_parent)).exists()


def test_no_terminals_group_is_made_when_its_weight_is_zero() -> None:
    placer = shells.ShellPlacer(f"playground-unit-{os.getpid()}", 0)
    placer.start()
    assert not placer.enabled
