"""The pids of the sandboxes' first processes, read from runc's state, are theirs only while they run:
runc's state outlives its process, and a pid whose start time is not runc's record is another
process's (lxcfs's files were once bound over the host's own /proc by following such a pid)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from sandbox.runtime.runc import RuncRuntime, process_stat


def runtime_with_state(tmp_path: Path, pid: int, started: int) -> RuncRuntime:
    """A runtime under ``tmp_path`` whose runc state records one sandbox of first process ``pid``
    started at ``started`` (clock ticks after boot), as runc writes it."""
    runtime = RuncRuntime(tmp_path / "agent", "pg-unit", 1_000_000_000)
    (runtime.runc_root / "s1").mkdir()
    state = {"id": "s1", "init_process_pid": pid, "init_process_start": started}
    (runtime.runc_root / "s1" / "state.json").write_text(json.dumps(state))
    return runtime


def test_a_running_first_process_is_found_with_its_pid(tmp_path: Path) -> None:
    stat = process_stat(os.getpid())
    assert stat is not None
    runtime = runtime_with_state(tmp_path, os.getpid(), stat[1])
    assert runtime.init_pids() == [os.getpid()]
    assert runtime.has_file("s1", "/proc")


def test_a_pid_now_held_by_another_process_is_not_the_sandboxs(tmp_path: Path) -> None:
    stat = process_stat(os.getpid())
    assert stat is not None
    runtime = runtime_with_state(tmp_path, os.getpid(), stat[1] - 1)  # this process started later
    assert runtime.init_pids() == []
    assert not runtime.has_file("s1", "/proc")


def test_a_first_process_that_exited_is_not_found(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "60"])
    stat = process_stat(child.pid)
    assert stat is not None
    runtime = runtime_with_state(tmp_path, child.pid, stat[1])
    assert runtime.init_pids() == [child.pid]
    child.kill()
    child.wait()
    assert runtime.init_pids() == []
