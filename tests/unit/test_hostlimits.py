"""The agent raises the kernel's per-user key quota that every sandbox counts against."""

from __future__ import annotations

from pathlib import Path

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
