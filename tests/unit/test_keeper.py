"""The terminal keeper holds PTY masters while the agent is gone."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sandbox.keeper.client import KeeperClient, KeeperError
from sandbox.keeper.service import serve_forever


@pytest.fixture
def keeper(tmp_path: Path) -> KeeperClient:
    path = tmp_path / "keeper.sock"
    threading.Thread(target=serve_forever, args=(path,), daemon=True).start()
    client = KeeperClient(path)
    deadline = time.monotonic() + 5
    while not client.available():
        assert time.monotonic() < deadline, "the keeper did not start"
        time.sleep(0.01)
    return client


def test_a_kept_pty_does_not_hang_up_when_its_owner_closes_it(keeper: KeeperClient) -> None:
    master, slave = os.openpty()
    keeper.keep("s1", [master])
    os.close(master)  # the agent dies
    os.write(slave, b"still here\n")  # would fail with EIO if no master were open
    (again,) = keeper.get("s1")  # the next agent
    assert b"still here" in os.read(again, 100)
    keeper.drop("s1")
    os.close(again)
    with pytest.raises(OSError):  # the last master is gone: the terminal hung up
        os.write(slave, b"gone\n")
        os.read(slave, 1)
    os.close(slave)


def test_the_keeper_lists_keys_and_replaces_what_a_key_held(keeper: KeeperClient) -> None:
    first, second = os.memfd_create("a"), os.memfd_create("b")
    os.write(second, b"second")
    keeper.keep("k", [first])
    keeper.keep("k", [second])
    os.close(first)
    os.close(second)
    assert keeper.keys() == {"k"}
    (fd,) = keeper.get("k")
    assert os.pread(fd, 6, 0) == b"second"
    os.close(fd)
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
