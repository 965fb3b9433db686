"""The lab script settings: a default that fits a check, strict ranges that name the variable."""

from __future__ import annotations

import pytest

from playground.config import ConfigError, load


def test_lab_scripts_get_ten_seconds_and_64_kib_by_default() -> None:
    cfg = load({})
    assert cfg.check_timeout == 10
    assert cfg.check_output_limit == 64 * 1024


def test_sizes_are_read_with_units() -> None:
    cfg = load({"PLAYGROUND_CHECK_TIMEOUT": "30", "PLAYGROUND_CHECK_OUTPUT_LIMIT": "128K"})
    assert cfg.check_timeout == 30
    assert cfg.check_output_limit == 128 * 1024


@pytest.mark.parametrize(
    "name, value",
    [
        ("PLAYGROUND_CHECK_TIMEOUT", "0"),
        ("PLAYGROUND_CHECK_TIMEOUT", "46"),
        ("PLAYGROUND_CHECK_TIMEOUT", "ten"),
        ("PLAYGROUND_CHECK_OUTPUT_LIMIT", "512"),
        ("PLAYGROUND_CHECK_OUTPUT_LIMIT", "1M"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load({name: value})
