"""The agent's lxcfs: which files a sandbox gets from it, and what happens when it cannot run."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from sandbox import settings
from sandbox.host import lxcfs
from sandbox.host.lxcfs import Lxcfs
from sandbox.runtime.bundle import build_config
from tests.unit.test_bundle import spec


def test_a_sandbox_gets_lxcfss_proc_files_and_cpu_directory_read_only() -> None:
    mounts = build_config(spec(lxcfs=Path("/data/lxcfs")))["mounts"]
    from_lxcfs = {m["destination"]: m for m in mounts if m["source"].startswith("/data/lxcfs/")}
    assert sorted(from_lxcfs) == [
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/loadavg",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/sys/devices/system/cpu",
    ]
    for destination, mount in from_lxcfs.items():
        assert mount["source"] == f"/data/lxcfs{destination}"
        assert {"bind", "ro", "nosuid", "nodev", "noexec"} <= set(mount["options"])
    destinations = [m["destination"] for m in mounts]
    assert destinations.index("/sys") < destinations.index("/sys/devices/system/cpu")  # over sysfs, not under


def test_without_lxcfs_a_sandbox_keeps_the_kernels_proc_files() -> None:
    mounts = build_config(spec())["mounts"]
    assert not [m for m in mounts if m["destination"].startswith(("/proc/", "/sys/devices"))]


def test_lxcfs_is_on_unless_turned_off() -> None:
    env = {"PLAYGROUND_DATA_DIR": "/tmp/pg-unit", "PLAYGROUND_SECRET_KEY": "x"}
    assert settings.load(env).lxcfs is True
    assert settings.load({**env, "PLAYGROUND_LXCFS": "false"}).lxcfs is False
    with pytest.raises(settings.ConfigError, match="PLAYGROUND_LXCFS"):
        settings.load({**env, "PLAYGROUND_LXCFS": "maybe"})


def test_without_the_lxcfs_binary_sandboxes_get_the_hosts_view_and_the_agent_says_why_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lxcfs.shutil, "which", lambda name: None)
    daemon = Lxcfs(tmp_path / "lxcfs", tmp_path / "agent")

    async def twice() -> tuple[bool, Path | None]:
        await daemon.check()
        return await daemon.check(), await daemon.view()

    with caplog.at_level(logging.WARNING, "sandbox.agent"):
        assert asyncio.run(twice()) == (False, None)
    said = [r.getMessage() for r in caplog.records if "host's memory" in r.getMessage()]
    assert said == [
        "new sandboxes see the host's memory, processors and uptime in /proc: "
        "lxcfs is not installed (make deps, or apt-get install lxcfs)"
    ]


def test_turned_off_lxcfs_is_never_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lxcfs.subprocess, "Popen", lambda *a, **k: pytest.fail("lxcfs started"))
    daemon = Lxcfs(tmp_path / "lxcfs", tmp_path / "agent", enabled=False)
    assert asyncio.run(daemon.check()) is False
    assert not (tmp_path / "lxcfs").exists()


def test_the_topmost_mount_at_a_point_names_the_device_a_sandbox_reads(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - overlay overlay rw\n"
        "30 22 0:5 / /proc rw - proc proc rw\n"
        "41 30 0:60 /proc/meminfo /proc/meminfo ro - fuse.lxcfs lxcfs rw\n"
        "52 41 0:75 /proc/meminfo /proc/meminfo ro - fuse.lxcfs lxcfs rw\n"
    )
    assert lxcfs.mounted_device(mountinfo, "/proc/meminfo") == "0:75"  # a new lxcfs over a dead one
    assert lxcfs.mounted_device(mountinfo, "/proc/uptime") is None


def test_lxcfss_files_are_never_bound_into_the_hosts_own_mount_namespace(tmp_path: Path) -> None:
    # A process sharing the agent's mount namespace (a pid runc's state once named, reused by a host
    # process) is refused before anything is mounted: lxcfs's files over the host's /proc hang it.
    with pytest.raises(lxcfs.MountError, match="shares the host's mount namespace"):
        lxcfs.rebind(os.getpid(), tmp_path)
