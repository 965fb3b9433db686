"""The agent's file ops, the parts that need no sandbox: naming the pid whose directory relative
paths go to, the request's fields, and the script's exit statuses as refusals."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from sandbox.agent.files import _count, _path, pid_inside
from sandbox.runtime.files import TREE_SCRIPT, Transfer, _refuse
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


def tree(directory: str, path: str = "/usr/bin:/bin") -> tuple[int, bytes, str]:
    """The get_tree script run by this host's /bin/sh: its exit status, output and last message."""
    done = subprocess.run(
        ["/bin/sh", "-c", TREE_SCRIPT, "sh", directory], capture_output=True, env={"PATH": path}, check=False
    )
    return done.returncode, done.stdout, done.stderr.decode().strip().splitlines()[-1]


def test_the_tree_script_packs_a_directory_with_its_modes_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir(mode=0o700)
    (tmp_path / "proj" / "notes.txt").write_bytes(b"hello\n")
    (tmp_path / "link").symlink_to("proj/notes.txt")
    code, packed, message = tree(str(tmp_path))
    assert (code, message) == (0, str(tmp_path.resolve()))
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        assert sorted(tar.getnames()) == [".", "./link", "./proj", "./proj/notes.txt"]
        assert tar.getmember("./proj").mode & 0o777 == 0o700
        assert tar.getmember("./link").linkname == "proj/notes.txt"
        assert tar.extractfile("./proj/notes.txt").read() == b"hello\n"  # type: ignore[union-attr]


def test_the_tree_script_says_which_directory_is_missing_and_when_there_is_no_tar(tmp_path: Path) -> None:
    assert tree(str(tmp_path / "gone")) == (11, b"", str(tmp_path / "gone"))
    assert tree(str(tmp_path), path="/nonexistent")[0] == 16
