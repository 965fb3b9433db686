"""Groups of sandboxes (a session's nodes) and the stats op, without a host: the pairs and hosts
files derived from the agent's sandboxes, the group field of a request, the in-place write of a
hosts file, and the readers of cgroups and socket tables."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from sandbox.agent import requestfields
from sandbox.agent.groups import Groups
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.host import cgroups
from sandbox.network.listening import parse_address, reachable_listeners
from sandbox.network.namespaces import SandboxNetwork
from sandbox.network.pool import Lease
from sandbox.network.rules import Pair
from sandbox.pty.terminal import Terminal
from sandbox.runtime import layers
from sandbox.runtime.runc import RuncRuntime
from sandbox.wire.protocol import AgentError
from sandbox.wire.replay import ReplayBuffer

A = ipaddress.IPv4Address


class Peers:
    """A network that only records the pairs it is given."""

    def __init__(self) -> None:
        self.sets: list[list[Pair]] = []

    async def set_peers(self, pairs: list[Pair]) -> None:
        self.sets.append(pairs)


class Dirs:
    """A runtime that only knows where sandboxes' directories are."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def sandbox_dir(self, runtime_id: str) -> Path:
        return self.root / runtime_id


@pytest.fixture
async def terminal() -> AsyncIterator[Terminal]:
    master, slave = os.openpty()
    os.close(slave)
    made = Terminal(master, ReplayBuffer(4096))
    yield made
    made.close()


def member(root: Path, terminal: Terminal, name: str, address: str, group: str | None, created: float) -> Sandbox:
    """A running sandbox with a hosts file of its own in ``root/<runtime id>/layer/etc``."""
    runtime_id = f"w{name}"
    (root / runtime_id / "layer" / "etc").mkdir(parents=True)
    (root / runtime_id / "layer" / "etc" / "hosts").write_text(layers.hosts_text([(address, name)]))
    lease = Lease(f"n{name}", Path("/run/netns/x"), A(address), root / runtime_id, 0)
    sandbox = Sandbox(f"sbx{name}00", name, "busybox", created, terminal, lease, runtime_id)
    sandbox.group = group
    return sandbox


def hosts(root: Path, sandbox: Sandbox) -> str:
    return (root / sandbox.runtime_id / "layer" / "etc" / "hosts").read_text()


async def test_members_of_a_group_reach_and_name_each_other_and_a_leaving_one_is_taken_away(
    tmp_path: Path, terminal: Terminal
) -> None:
    registry, peers = Registry(), Peers()
    groups = Groups(registry, cast(SandboxNetwork, peers), cast(RuncRuntime, Dirs(tmp_path)))
    one = member(tmp_path, terminal, "node1", "10.89.0.2", "aa", 1.0)
    two = member(tmp_path, terminal, "node2", "10.89.0.3", "aa", 2.0)
    other = member(tmp_path, terminal, "node1x", "10.89.0.4", "bb", 1.5)
    alone = member(tmp_path, terminal, "solo", "10.89.0.5", None, 1.0)
    for sandbox in (one, two, other, alone):
        registry.sandboxes[sandbox.sandbox_id] = sandbox
        await groups.joined(sandbox)
    assert peers.sets[-1] == [(A("10.89.0.2"), A("10.89.0.3")), (A("10.89.0.3"), A("10.89.0.2"))]
    both = "127.0.0.1\tlocalhost\n::1\tlocalhost\n10.89.0.2\tnode1\n10.89.0.3\tnode2\n"
    assert hosts(tmp_path, one) == hosts(tmp_path, two) == both
    assert hosts(tmp_path, other) == layers.hosts_text([("10.89.0.4", "node1x")])
    assert hosts(tmp_path, alone) == layers.hosts_text([("10.89.0.5", "solo")])

    inode = os.stat(tmp_path / one.runtime_id / "layer" / "etc" / "hosts").st_ino
    registry.destroying.add(two.sandbox_id)
    await groups.leaving(two)
    assert peers.sets[-1] == []
    assert hosts(tmp_path, one) == layers.hosts_text([("10.89.0.2", "node1")])
    assert os.stat(tmp_path / one.runtime_id / "layer" / "etc" / "hosts").st_ino == inode  # the bound file itself


async def test_pairs_are_derived_from_the_sandboxes_so_an_adopting_agent_gets_them_again(
    tmp_path: Path, terminal: Terminal
) -> None:
    registry = Registry()
    groups = Groups(registry, cast(SandboxNetwork, Peers()), cast(RuncRuntime, Dirs(tmp_path)))
    for sandbox in (
        member(tmp_path, terminal, "node1", "10.89.0.2", "aa", 1.0),
        member(tmp_path, terminal, "node2", "10.89.0.3", "aa", 2.0),
    ):
        again = Sandbox.from_record(sandbox.record(), terminal, sandbox.runtime_id, sandbox.network.directory)  # type: ignore[union-attr]
        assert again.group == "aa" and again.describe()["group"] == "aa"
        registry.sandboxes[again.sandbox_id] = again
    assert groups.pairs() == [(A("10.89.0.2"), A("10.89.0.3")), (A("10.89.0.3"), A("10.89.0.2"))]


def test_a_hosts_file_is_never_written_through_a_symbolic_link_or_into_anything_but_a_regular_file(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    target = tmp_path / "shadow"
    target.write_text("root:x\n")
    (etc / "hosts").symlink_to(target)
    with pytest.raises(OSError):
        layers.rewrite_hosts(tmp_path, "10.0.0.1\tevil\n")
    assert target.read_text() == "root:x\n"
    (etc / "hosts").unlink()
    os.mkfifo(etc / "hosts")
    with pytest.raises(OSError):  # ENXIO: a FIFO without a reader is not opened for writing, nor waited on
        layers.rewrite_hosts(tmp_path, "10.0.0.1\tevil\n")
    with pytest.raises(ValueError, match="over"):
        layers.rewrite_hosts(tmp_path, "x" * (layers.HOSTS_LIMIT + 1))


@pytest.mark.parametrize("value", ["0123abcd" * 4, "a"])
def test_a_group_is_hexadecimal(value: str) -> None:
    assert requestfields.group({"group": value}) == value
    assert requestfields.group({}) is None


@pytest.mark.parametrize("value", ["", "XYZ", "ab\n", "a" * 65, 12, "../x"])
def test_any_other_group_is_refused_with_what_is_accepted(value: object) -> None:
    with pytest.raises(AgentError, match="hexadecimal"):
        requestfields.group({"group": value})


def test_a_hostname_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(AgentError, match="DNS label"):
        requestfields.hostname({"hostname": "node1\n"})


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0300590A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0300590A:9C40 0200590A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A
   2: 0000000000000000FFFF00000100007F:0052 00000000000000000000000000000000:0000 0A
"""


def test_listening_ports_are_read_from_the_socket_tables_without_loopback_or_connections() -> None:
    assert reachable_listeners(TCP) == {8080, 22}  # 127.0.0.1:8081 and a connection left out
    assert reachable_listeners(TCP6) == {80}  # ::1 and ::ffff:127.0.0.1 left out
    assert parse_address("0300590A") == A("10.89.0.3")


def cgroup_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_usage_is_read_from_cgroup_v2(tmp_path: Path) -> None:
    rel = "pg/sbx1"
    cgroup_files(
        tmp_path / rel,
        {
            "memory.current": "50000000\n",
            "memory.max": "268435456\n",
            "memory.stat": "anon 40000000\ninactive_file 10000000\n",
            "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n",
        },
    )
    mounts = {"memory": (tmp_path, True), "cpu": (tmp_path, True)}
    assert cgroups.usage("pg", "sbx1", mounts) == cgroups.Usage(40000000, 268435456, 2.5)
    (tmp_path / rel / "memory.max").write_text("max\n")
    assert cgroups.usage("pg", "sbx1", mounts) == cgroups.Usage(40000000, 0, 2.5)
    assert cgroups.usage("pg", "gone", mounts) is None


def test_usage_is_read_from_cgroup_v1(tmp_path: Path) -> None:
    cgroup_files(
        tmp_path / "memory" / "pg" / "sbx1",
        {
            "memory.usage_in_bytes": "30000000\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.stat": "cache 5000\ntotal_inactive_file 1000000\n",
        },
    )
    cgroup_files(tmp_path / "cpuacct" / "pg" / "sbx1", {"cpuacct.usage": "1500000000\n"})
    mounts = {"memory": (tmp_path / "memory", False), "cpuacct": (tmp_path / "cpuacct", False)}
    assert cgroups.usage("pg", "sbx1", mounts) == cgroups.Usage(29000000, 0, 1.5)
