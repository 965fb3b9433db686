"""The agent raises the host-wide kernel limits that every sandbox counts against (never lowers them)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from sandbox.host import limits as hostlimits


def keys_dir(tmp_path: Path, maxkeys: int, maxbytes: int) -> Path:
    (tmp_path / "maxkeys").write_text(f"{maxkeys}\n")
    (tmp_path / "maxbytes").write_text(f"{maxbytes}\n")
    return tmp_path


def test_the_kernel_defaults_are_raised_to_lxds_production_values(tmp_path: Path) -> None:
    raised = hostlimits.ensure_key_quota(100, keys_dir(tmp_path, 200, 20000))
    assert raised == {"maxkeys": 2000, "maxbytes": 2_000_000}
    assert (tmp_path / "maxkeys").read_text() == "2000\n"


def test_a_larger_host_gets_five_keys_per_sandbox(tmp_path: Path) -> None:
    assert hostlimits.ensure_key_quota(1000, keys_dir(tmp_path, 200, 20000)) == {"maxkeys": 5000, "maxbytes": 5_000_000}


def test_higher_limits_are_never_lowered(tmp_path: Path) -> None:
    assert hostlimits.ensure_key_quota(100, keys_dir(tmp_path, 100000, 25_000_000)) == {}
    assert (tmp_path / "maxkeys").read_text() == "100000\n"


def test_an_unwritable_limit_is_left_alone(tmp_path: Path) -> None:
    assert hostlimits.ensure_key_quota(100, tmp_path / "missing") == {}


def sysctl_dir(tmp_path: Path, values: dict[str, int]) -> Path:
    for name, value in values.items():
        path = tmp_path / name.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    return tmp_path


KERNEL_DEFAULTS = {
    "kernel.keys.maxkeys": 200,
    "kernel.keys.maxbytes": 20000,
    "kernel.pty.max": 4096,
    "kernel.pty.reserve": 1024,
    "fs.file-max": 100_000,
}


def test_ptys_are_raised_to_the_kernels_highest_so_memory_runs_out_before_the_count(tmp_path: Path) -> None:
    raised = hostlimits.ensure_host_limits(100, sysctl_dir(tmp_path, KERNEL_DEFAULTS))
    assert raised["kernel.pty.max"] == 1 << 20  # NR_UNIX98_PTY_MAX: about 3 GiB of ptys' memory
    assert (tmp_path / "kernel/pty/max").read_text() == "1048576\n"


def test_open_files_are_raised_so_memory_runs_out_before_the_count(tmp_path: Path) -> None:
    raised = hostlimits.ensure_host_limits(100, sysctl_dir(tmp_path, KERNEL_DEFAULTS))
    assert raised["fs.file-max"] == hostlimits.host_memory_bytes() // 192
    assert hostlimits.wanted_file_max(24 * 1024**3) == 134_217_728


def test_the_host_limits_are_never_lowered(tmp_path: Path) -> None:
    high = {**KERNEL_DEFAULTS, "kernel.pty.max": 1 << 20, "fs.file-max": 2**63 - 1}
    raised = hostlimits.ensure_host_limits(100, sysctl_dir(tmp_path, high))
    assert "kernel.pty.max" not in raised
    assert "fs.file-max" not in raised
    assert (tmp_path / "fs/file-max").read_text() == f"{2**63 - 1}\n"


def test_a_sandbox_bound_within_the_agents_own_hard_limit_needs_nothing() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_SIGPENDING)
    hostlimits.ensure_own_limits({"PLAYGROUND_SANDBOX_SIGPENDING": (resource.RLIMIT_SIGPENDING, min(hard, 16))})
    assert resource.getrlimit(resource.RLIMIT_SIGPENDING) == (soft, hard)


def test_a_sandbox_bound_above_a_hard_limit_the_agent_cannot_raise_stops_it_naming_the_setting_and_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(which: int, limits: tuple[int, int]) -> None:  # a process without CAP_SYS_RESOURCE
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 819200))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    with pytest.raises(hostlimits.OwnLimitTooLow) as raised:
        hostlimits.ensure_own_limits({"PLAYGROUND_SANDBOX_MQUEUE_BYTES": (resource.RLIMIT_MSGQUEUE, 2_000_000)})
    message = str(raised.value)
    assert "PLAYGROUND_SANDBOX_MQUEUE_BYTES=2000000" in message
    assert "at most 819200" in message
    assert "LimitMSGQUEUE=" in message
