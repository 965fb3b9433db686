"""The pseudo-terminal guard counts the pty ends a sandbox's processes hold and stops one beyond its share."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.agent import ptyguard
from sandbox.agent.ptyguard import PtyGuard, Watched

# A process holding n pty masters (and nothing else of a pty) until killed; it prints "ready".
HOLDER = "import os, sys, time; [os.open('/dev/ptmx', os.O_RDWR | os.O_NOCTTY) for _ in range(int(sys.argv[1]))]; "
HOLDER += "print('ready', flush=True); time.sleep(60)"


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    """A process holding 20 pty masters."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, "20"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def cgroup_of(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """Each sandbox's processes, by runtime id, as the guard finds them in its cgroups."""
    members: dict[str, set[int]] = {}
    monkeypatch.setattr(ptyguard.cgroups, "sandbox_dirs", lambda parent, runtime_id: [Path(runtime_id)])
    monkeypatch.setattr(ptyguard.cgroups, "processes", lambda dirs, nested: members.get(str(dirs[0]), set()))
    return members


def pool(tmp_path: Path, in_use: int) -> Path:
    path = tmp_path / "nr"
    path.write_text(f"{in_use}\n")
    return path


def test_each_master_counts_and_each_slave_once_however_many_descriptors_share_it() -> None:
    before = ptyguard.ptys_held([os.getpid()])
    master, slave = os.openpty()
    copies = [os.dup(slave), os.dup(slave), os.dup(master)]
    try:
        assert ptyguard.ptys_held([os.getpid()]) == before + 3  # two masters, one slave
        assert ptyguard.descriptors([os.getpid()]) >= 5
    finally:
        for fd in [master, slave, *copies]:
            os.close(fd)


def test_processes_gone_count_nothing() -> None:
    assert ptyguard.ptys_held([2**22 + 1]) == 0
    assert ptyguard.descriptors([2**22 + 1]) == 0


def test_nothing_is_counted_while_the_pool_holds_no_more_than_a_share(
    tmp_path: Path, holder: subprocess.Popen[str], cgroup_of: dict[str, set[int]]
) -> None:
    cgroup_of["r1"] = {holder.pid}
    guard = PtyGuard(10, "parent", list, pool(tmp_path, 10))
    assert guard.offenders([Watched("s1", "r1", None)]) == []


def test_a_sandbox_beyond_its_share_is_found_and_one_within_it_is_not(
    tmp_path: Path, holder: subprocess.Popen[str], cgroup_of: dict[str, set[int]]
) -> None:
    cgroup_of["r1"] = {holder.pid}
    cgroup_of["r2"] = {os.getpid()}
    within, beyond = (
        PtyGuard(20, "parent", list, pool(tmp_path, 500)),
        PtyGuard(19, "parent", list, pool(tmp_path, 500)),
    )
    sandboxes = [Watched("s1", "r1", None), Watched("s2", "r2", None)]
    assert within.offenders(sandboxes) == []
    assert [(s.sandbox_id, held) for s, held, _ in beyond.offenders(sandboxes)] == [("s1", 20)]


def test_a_sandbox_beyond_its_share_is_killed_and_told_why_on_its_terminal(
    tmp_path: Path, holder: subprocess.Popen[str], cgroup_of: dict[str, set[int]]
) -> None:
    cgroup_of["r1"] = {holder.pid}
    master, slave = os.openpty()  # the sandbox's first terminal: the agent holds its master
    try:
        sandboxes = [Watched("s1", "r1", master), Watched("s2", "r2", None)]
        guard = PtyGuard(16, "parent", lambda: sandboxes, pool(tmp_path, 500))
        assert asyncio.run(guard.check()) == ["s1"]
        assert holder.wait(5) == -9
        told = os.read(master, 4096).decode()
        assert "held 20 pseudo-terminal ends, more than the 16 one sandbox may hold" in told
    finally:
        os.close(master)
        os.close(slave)


def test_a_sandbox_destroyed_while_it_was_counted_is_left_alone(
    tmp_path: Path, holder: subprocess.Popen[str], cgroup_of: dict[str, set[int]]
) -> None:
    cgroup_of["r1"] = {holder.pid}
    rounds = [[Watched("s1", "r1", None)], []]  # live when counted, gone when it would be stopped
    guard = PtyGuard(16, "parent", lambda: rounds.pop(0), pool(tmp_path, 500))
    assert asyncio.run(guard.check()) == []
    assert holder.poll() is None
