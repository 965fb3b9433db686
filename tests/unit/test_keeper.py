"""The terminal keeper holds PTY masters while the agent is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.keeper.client import KeeperClient, KeeperError
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[KeeperClient]:
    """A keeper serving on a socket in tmp_path, in its own process so that after the test its
    listening socket and every fd it holds close with it (a thread's would stay open)."""
    path = tmp_path / "keeper.sock"
    serving = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from sandbox.keeper.service import serve_forever;"
            " serve_forever(Path(sys.argv[1]))",
            str(path),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        client = KeeperClient(path)
        eventually(client.available, "the keeper answers on its socket", timeout=5, interval=0.01, explain=serving.poll)
        yield client
    finally:
        serving.kill()
        serving.wait()


class Fds:
    """The fds a test opened, closed after it unless it closed them itself (with :meth:`close`)."""

    def __init__(self) -> None:
        self.open: list[int] = []

    def own(self, *fds: int) -> tuple[int, ...]:
        self.open.extend(fds)
        return fds

    def close(self, fd: int) -> None:
        self.open.remove(fd)
        os.close(fd)


@pytest.fixture
def fds() -> Iterator[Fds]:
    owned = Fds()
    try:
        yield owned
    finally:
        for fd in owned.open:
            os.close(fd)


def test_a_kept_pty_does_not_hang_up_when_its_owner_closes_it(keeper: KeeperClient, fds: Fds) -> None:
    master, slave = fds.own(*os.openpty())
    keeper.keep("s1", [master])
    fds.close(master)  # the agent dies
    os.write(slave, b"still here\n")  # would fail with EIO if no master were open
    (again,) = fds.own(*keeper.get("s1"))  # the next agent
    assert b"still here" in os.read(again, 100)
    keeper.drop("s1")
    fds.close(again)
    with pytest.raises(OSError):  # the last master is gone: the terminal hung up
        os.write(slave, b"gone\n")
        os.read(slave, 1)


def test_the_keeper_lists_keys_and_replaces_what_a_key_held(keeper: KeeperClient, fds: Fds) -> None:
    first, second = fds.own(os.memfd_create("a"), os.memfd_create("b"))
    os.write(second, b"second")
    keeper.keep("k", [first])
    keeper.keep("k", [second])
    fds.close(first)
    fds.close(second)
    assert keeper.keys() == {"k"}
    (fd,) = fds.own(*keeper.get("k"))
    assert os.pread(fd, 6, 0) == b"second"
    keeper.drop("k")
    assert keeper.keys() == set()


def test_asking_for_an_unknown_key_is_a_clear_error(keeper: KeeperClient) -> None:
    with pytest.raises(KeeperError, match="nothing kept under nope"):
        keeper.get("nope")


def test_a_keeper_that_is_not_running_is_reported(tmp_path: Path) -> None:
    client = KeeperClient(tmp_path / "absent.sock")
    assert not client.available()
    with pytest.raises(KeeperError, match="did not answer"):
        client.keys()
