"""The agent's file ops, the parts that need no sandbox: naming the pid whose directory relative
paths go to, the request's fields, and the script's exit statuses as refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.agent.files import _count, _path, pid_inside
from sandbox.runtime.files import Transfer, _refuse
from sandbox.wire.protocol import AgentError


def write_status(proc: Path, pid: int, nspid: str) -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "status").write_text(f"Name:\tsh\nTgid:\t{pid}\nNSpid:\t{nspid}\nNSpgid:\t{nspid}\n")


def test_the_pid_inside_is_the_second_level_of_nspid(tmp_path: Path) -> None:
    write_status(tmp_path, 4242, "4242\t7")
    write_status(tmp_path, 5000, "5000\t12\t1")  # a process of a container inside the sandbox
    assert pid_inside(4242, tmp_path) == 7
    assert pid_inside(5000, tmp_path) == 12


def test_a_process_outside_any_sandbox_or_gone_has_no_pid_inside(tmp_path: Path) -> None:
    write_status(tmp_path, 1, "1")
    assert pid_inside(1, tmp_path) is None
    assert pid_inside(99, tmp_path) is None


@pytest.mark.parametrize("path", ["", None, 7, "a\0b", "a\nb", "x" * 4097])
def test_a_path_that_is_not_one_is_refused(path: object) -> None:
    with pytest.raises(AgentError) as caught:
        _path({"path": path})
    assert caught.value.code == "bad_path"


@pytest.mark.parametrize("value", [None, -1, True, 1.5, "10", (1 << 30) + 1])
def test_a_size_or_limit_that_is_not_a_byte_count_is_refused(value: object) -> None:
    with pytest.raises(AgentError) as caught:
        _count({"size": value}, "size")
    assert caught.value.code == "bad_request"


@pytest.mark.parametrize(
    ("code", "refusal"),
    [(10, "is_directory"), (11, "no_such_file"), (12, "bad_path"), (15, "bad_path"), (13, "bad_path"), (1, "bad_path")],
)
def test_the_scripts_exit_statuses_are_refusals_naming_the_path(code: int, refusal: str) -> None:
    with pytest.raises(AgentError) as caught:
        _refuse(Transfer(code, "/root/x"), "read")
    assert caught.value.code == refusal
    assert "/root/x" in caught.value.message


def test_a_script_that_succeeded_is_no_refusal() -> None:
    _refuse(Transfer(0, "/root/x"), "read")
