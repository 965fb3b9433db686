"""How the agent finds a tab's processes: a shell's session, never a process that reuses its pid."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host import cgroups
from sandbox.runtime.runc import process_stat, session_members
from tests.waiting import eventually


def test_a_live_process_has_its_session_and_start_time() -> None:
    stat = process_stat(os.getpid())
    assert stat is not None, "no stat for this very process"
    sid, started = stat
    assert sid == os.getsid(0)
    assert started > 0


def test_an_exited_process_awaiting_its_parent_counts_as_gone() -> None:
    child = subprocess.Popen(["sh", "-c", "exit 0"])
    try:
        # a zombie until waited for: nothing left to kill
        eventually(lambda: process_stat(child.pid), "the child exited", interval=0.01, until=lambda stat: stat is None)
        assert os.path.exists(f"/proc/{child.pid}"), "the child was reaped before its parent waited for it"
    finally:
        child.wait()
    assert process_stat(child.pid) is None


@pytest.fixture
def sandbox_cgroup() -> Iterator[tuple[str, str, Path]]:
    """A cgroup where a sandbox's would be (``/<parent>/<id>`` in one hierarchy), removed afterwards."""
    parent, sandbox_id = f"pg-unit-{os.getpid()}", "tabsessions"
    found = {h.name: h for h in cgroups.hierarchies()}
    hierarchy = found.get("pids") or found.get("unified") or next(iter(found.values()))
    directory = hierarchy / parent / sandbox_id
    directory.mkdir(parents=True)
    try:
        yield parent, sandbox_id, directory
        procs = directory / "cgroup.procs"
        # a killed process leaves once reaped by init
        eventually(lambda: procs.read_text().split(), "the cgroup is empty", interval=0.01, until=lambda pids: not pids)
    finally:
        directory.rmdir()
        directory.parent.rmdir()


def test_a_shells_session_is_found_in_its_sandbox_unless_its_pid_now_names_another_process(
    sandbox_cgroup: tuple[str, str, Path],
) -> None:
    parent, sandbox_id, directory = sandbox_cgroup
    leader = subprocess.Popen(["sh", "-c", "read go; sleep 30 & wait"], stdin=subprocess.PIPE, start_new_session=True)
    try:
        (directory / "cgroup.procs").write_text(str(leader.pid))
        assert leader.stdin is not None
        leader.stdin.write(b"go\n")  # its job starts inside the cgroup
        leader.stdin.close()
        stat = process_stat(leader.pid)
        assert stat is not None, "no stat for the shell"
        assert stat[0] == leader.pid
        members = eventually(
            lambda: session_members(parent, sandbox_id, leader.pid, stat[1]),
            "the shell and its sleep, forked inside the cgroup, are its session's members",
            interval=0.01,
            until=lambda members: len(members) >= 2,
        )
        assert leader.pid in members
        assert session_members(parent, sandbox_id, leader.pid, stat[1] + 1) == []  # a reused pid: nothing
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.communicate()  # reaps it and closes its stdin if the test failed before it did
