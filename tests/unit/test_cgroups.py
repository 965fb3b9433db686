"""Finding cgroup hierarchies on v1, v2 and hybrid hosts (this machine is hybrid; the others are
described by mountinfo files as those hosts write them)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from sandbox.host import cgroups

V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = (
    "31 23 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n"
    "32 23 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids\n"
)
HYBRID = V1 + "33 23 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:11 - cgroup2 cgroup2 rw\n"
ROOT = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"


@pytest.mark.parametrize(
    "text,version,points",
    [
        (ROOT + V2, "v2", ["/sys/fs/cgroup"]),
        (ROOT + V1, "v1", ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"]),
        (ROOT + HYBRID, "hybrid", ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"]),
        (ROOT, "none", []),
    ],
)
def test_hierarchies_and_version_are_read_from_mountinfo(
    tmp_path: Path, text: str, version: str, points: list[str]
) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(text)
    assert cgroups.version(str(mountinfo)) == version
    assert [str(p) for p in cgroups.hierarchies(str(mountinfo))] == points


def test_this_host_has_the_controllers_the_sandboxes_need() -> None:
    points = cgroups.hierarchies()
    assert points, "no cgroup hierarchy is mounted"
    if cgroups.version() == "v2":
        controllers = (points[0] / "cgroup.controllers").read_text().split()
        assert {"memory", "pids", "cpu"} <= set(controllers)
    else:
        names = {p.name for p in points}
        assert {"memory", "pids"} <= names
        assert {"cpu", "cpu,cpuacct"} & names


@pytest.mark.parametrize("kind", ["cgroup", "cgroup2"])
def test_a_crashed_sandboxs_nested_cgroups_are_found_and_removed_on_a_real_hierarchy(kind: str) -> None:
    # This hybrid host has both kinds mounted: the v1 pids hierarchy and the (controller-less) v2 one.
    with open("/proc/self/mountinfo") as info:
        points = [Path(f[4]) for f in (line.split() for line in info) if f[f.index("-") + 1] == kind]
    if not points:
        pytest.skip(f"no {kind} hierarchy is mounted on this host")
    parent, sandbox_id = f"playground-unit-{os.getpid()}", "deadbeef00000001"
    nested = points[0] / parent / sandbox_id / "init" / "inner"
    nested.mkdir(parents=True)
    try:
        assert sandbox_id in cgroups.all_sandbox_ids(parent)
        assert cgroups.remove(parent, sandbox_id) == []
        assert not (points[0] / parent / sandbox_id).exists()
        assert sandbox_id not in cgroups.all_sandbox_ids(parent)
    finally:
        for path in (nested, nested.parent, nested.parent.parent):
            if path.exists():
                path.rmdir()
        cgroups.remove_parent(parent)
    assert not (points[0] / parent).exists()


@pytest.mark.parametrize(
    "text,expected",
    [
        (ROOT + V2, [("/sys/fs/cgroup", True)]),
        (ROOT + V1, [("/sys/fs/cgroup/memory", False), ("/sys/fs/cgroup/pids", False)]),
        (
            ROOT
            + HYBRID
            + "34 23 0:30 / /sys/fs/cgroup/systemd rw,nosuid shared:12 - cgroup cgroup rw,xattr,name=systemd\n",
            [("/sys/fs/cgroup/memory", False), ("/sys/fs/cgroup/pids", False)],
        ),
    ],
)
def test_only_hierarchies_with_controllers_are_delegated(tmp_path: Path, text: str, expected: list) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(text)
    assert [(str(p), v2) for p, v2 in cgroups.controller_hierarchies(str(mountinfo))] == expected


def test_delegating_gives_the_sandboxs_root_its_cgroup_directories_but_not_the_limits_in_them() -> None:
    parent, sandbox_id, owner = f"playground-unit-{os.getpid()}", "deadbeef00000002", 1_000_065_536
    made = []
    for hierarchy, _v2 in cgroups.controller_hierarchies():
        directory = hierarchy / parent / sandbox_id
        directory.mkdir(parents=True)
        made.append(directory)
    try:
        assert made, "no hierarchy with controllers on this host"
        assert sorted(cgroups.delegate(parent, sandbox_id, owner)) == sorted(made)
        for directory in made:
            assert (directory.stat().st_uid, directory.stat().st_gid) == (owner, owner)
            limits = [p for p in directory.iterdir() if p.name.endswith((".max", ".limit_in_bytes", ".cfs_quota_us"))]
            assert all(p.stat().st_uid == 0 for p in limits)
    finally:
        for directory in made:
            directory.rmdir()
        cgroups.remove_parent(parent)


@pytest.mark.parametrize("weight,shares", [(25, "256"), (100, "1024"), (1, "10"), (10000, "102400")])
def test_a_cpu_weight_is_written_as_v1_shares_on_the_v2_scale(tmp_path: Path, weight: int, shares: str) -> None:
    directory = cgroups.set_parent_cpu_weight("pg", weight, {"cpu": (tmp_path, False)})
    assert directory == tmp_path / "pg"
    assert (directory / "cpu.shares").read_text() == shares


def test_a_cpu_weight_is_written_as_is_on_v2_and_skipped_where_the_cpu_controller_is_not_enabled(
    tmp_path: Path,
) -> None:
    assert cgroups.set_parent_cpu_weight("pg", 25, {"cpu": (tmp_path, True)}) is None  # no cpu.weight file
    (tmp_path / "pg" / "cpu.weight").write_text("100")
    assert cgroups.set_parent_cpu_weight("pg", 25, {"cpu": (tmp_path, True)}) == tmp_path / "pg"
    assert (tmp_path / "pg" / "cpu.weight").read_text() == "25"
    assert cgroups.set_parent_cpu_weight("pg", 25, {"memory": (tmp_path, True)}) is None


def test_the_sandboxes_parent_gets_its_cpu_weight_on_this_hosts_real_cpu_hierarchy() -> None:
    parent = f"playground-unit-{os.getpid()}"
    directory = cgroups.set_parent_cpu_weight(parent, 25)
    try:
        assert directory is not None, "this host has no cpu controller"
        knob = "cpu.weight" if cgroups.controller_mounts()["cpu"][1] else "cpu.shares"
        assert (directory / knob).read_text().strip() == ("25" if knob == "cpu.weight" else "256")
    finally:
        cgroups.remove_parent(parent)
    assert directory is not None and not directory.exists()


@pytest.mark.parametrize(
    "mounts,separate",
    [
        ({"cpu": ("/c/cpu", False), "cpuacct": ("/c/cpuacct", False), "memory": ("/c/memory", False)}, True),
        ({"cpu": ("/c/cpu,cpuacct", False), "cpuacct": ("/c/cpu,cpuacct", False)}, True),
        ({"cpu": ("/c/cpu,memory", False), "memory": ("/c/cpu,memory", False)}, False),
        ({"cpu": ("/c", True), "memory": ("/c", True)}, False),
        ({"memory": ("/c/memory", False)}, False),
    ],
)
def test_only_a_v1_cpu_hierarchy_without_other_limits_lets_a_shell_have_a_cpu_cgroup_of_its_own(
    mounts: dict[str, tuple[str, bool]], separate: bool
) -> None:
    typed = {name: (Path(point), v2) for name, (point, v2) in mounts.items()}
    assert cgroups.separate_cpu_hierarchy(typed) == (typed["cpu"][0] if separate else None)


def test_a_placed_shell_keeps_its_quota_and_its_other_cgroups_and_goes_with_the_sandbox() -> None:
    hierarchy = cgroups.separate_cpu_hierarchy()
    if hierarchy is None:
        pytest.skip("the cpu controller has no v1 hierarchy of its own on this host")
    parent, sandbox_id = f"playground-unit-{os.getpid()}", "deadbeef00000002"
    own = hierarchy / parent / sandbox_id
    own.mkdir(parents=True)
    (own / "cpu.cfs_quota_us").write_text("50000")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        before = Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()
        directory = cgroups.place_shell(parent, sandbox_id, sleeper.pid)
        assert directory == hierarchy / cgroups.terminals_parent(parent) / sandbox_id
        assert (directory / "cpu.cfs_quota_us").read_text().strip() == "50000"
        after = Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()
        moved = [line for line in after if line not in before]
        assert len(moved) == 1 and moved[0].endswith(f":/{cgroups.terminals_parent(parent)}/{sandbox_id}"), after
        assert sandbox_id in cgroups.all_sandbox_ids(parent)
        assert cgroups.remove(parent, sandbox_id) == [directory]  # busy while the shell lives
    finally:
        sleeper.kill()
        sleeper.wait()
    deadline = time.monotonic() + 5
    while cgroups.remove(parent, sandbox_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not own.exists() and not directory.exists()
    cgroups.remove_parent(parent)
    assert not (hierarchy / cgroups.terminals_parent(parent)).exists() and not (hierarchy / parent).exists()


def test_no_shell_is_placed_for_a_sandbox_without_a_cpu_cgroup() -> None:
    if cgroups.separate_cpu_hierarchy() is None:
        pytest.skip("the cpu controller has no v1 hierarchy of its own on this host")
    assert cgroups.place_shell(f"playground-unit-{os.getpid()}", "deadbeef00000003", os.getpid()) is None
