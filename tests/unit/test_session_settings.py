"""Settings of the session lifecycle: extension, the longest lifetime, per-address limits, proxies."""

from __future__ import annotations

import pytest

from playground import config


def test_lifecycle_defaults() -> None:
    cfg = config.load({})
    assert cfg.idle_timeout == 1800
    assert cfg.session_extend == 3600
    assert cfg.session_max_ttl == 8 * 3600
    assert cfg.max_sessions_per_address == 3
    assert cfg.creations_per_minute == 10
    assert cfg.proxy_count == 0
    assert cfg.limit_exempt == ["127.0.0.0/8", "::1/128"]


def test_the_longest_lifetime_defaults_to_the_ttl_when_the_ttl_is_longer_than_8_hours() -> None:
    assert config.load({"PLAYGROUND_SESSION_TTL": "36000"}).session_max_ttl == 36000


def test_the_longest_lifetime_cannot_be_shorter_than_the_ttl() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load({"PLAYGROUND_SESSION_TTL": "3600", "PLAYGROUND_SESSION_MAX_TTL": "600"})
    assert "PLAYGROUND_SESSION_MAX_TTL=600 is shorter than PLAYGROUND_SESSION_TTL=3600" in str(caught.value)


def test_a_short_idle_timeout_is_accepted_for_tests() -> None:
    assert config.load({"PLAYGROUND_IDLE_TIMEOUT": "5"}).idle_timeout == 5


def test_exempt_networks_are_addresses_or_networks_or_none() -> None:
    assert config.load({"PLAYGROUND_LIMIT_EXEMPT": "203.0.113.7, 10.0.0.0/8"}).limit_exempt == [
        "203.0.113.7/32",
        "10.0.0.0/8",
    ]
    assert config.load({"PLAYGROUND_LIMIT_EXEMPT": "none"}).limit_exempt == []
    with pytest.raises(config.ConfigError, match="PLAYGROUND_LIMIT_EXEMPT: 'room' is not an address"):
        config.load({"PLAYGROUND_LIMIT_EXEMPT": "room"})
