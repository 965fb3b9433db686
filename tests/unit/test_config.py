"""Strict settings: a bad value stops start-up with a message naming the variable and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playground import config
from playground.config import ConfigError, Quotas, load


def test_defaults_follow_the_design() -> None:
    cfg = config.load({})
    assert cfg.port == 8000 and cfg.session_ttl == 14400 and cfg.default_image == "busybox"
    assert cfg.redis_url == "redis://127.0.0.1:6379/0" and cfg.database_url is None
    assert cfg.data_dir == config.REPO_DIR / "var" and cfg.agent_socket == cfg.data_dir / "run" / "agent.sock"
    assert cfg.quotas.memory_bytes == 512 * 1024**2 and cfg.quotas.pids == 256
    assert cfg.reaper_interval == 30 and cfg.ending_requeue_after == 60
    assert cfg.max_terminals == 8


@pytest.mark.parametrize(
    "name,value,accepted",
    [
        ("PLAYGROUND_PORT", "eighty", "integer from 1 to 65535"),
        ("PLAYGROUND_PORT", "70000", "integer from 1 to 65535"),
        ("PLAYGROUND_SESSION_TTL", "1", "integer from 5"),
        ("PLAYGROUND_DATA_DIR", "relative/dir", "absolute path"),
        ("PLAYGROUND_REDIS_URL", "http://localhost", "redis://"),
        ("DATABASE_URL", "mysql://x", "postgres://"),
        ("PLAYGROUND_DEFAULT_IMAGE", "Bad Name!", "lower-case"),
        ("PLAYGROUND_SANDBOX_MEMORY", "lots", "256M"),
        ("PLAYGROUND_SANDBOX_MEMORY", "1K", "size from"),
        ("PLAYGROUND_SANDBOX_CPUS", "0", "decimal from"),
        ("PLAYGROUND_DEBUG", "maybe", "yes/no"),
        ("PLAYGROUND_BIND", "localhost:80", "IP address"),
        ("PLAYGROUND_ALLOWED_HOSTS", "a,,b", "empty item"),
        ("PLAYGROUND_IDLE_TIMEOUT", "4", "integer from 5"),
        ("PLAYGROUND_SESSION_EXTEND", "0", "integer from 1"),
        ("PLAYGROUND_MAX_SESSIONS_PER_ADDRESS", "none", "whole number"),
        ("PLAYGROUND_CREATIONS_PER_MINUTE", "0", "integer from 1"),
        ("PLAYGROUND_MAX_TERMINALS", "0", "integer from 1 to 64"),
        ("PLAYGROUND_MAX_TERMINALS", "eight", "integer from 1 to 64"),
        ("PLAYGROUND_PROXY_COUNT", "11", "integer from 0 to 10"),
        ("PLAYGROUND_ENDING_REQUEUE_AFTER", "0", "integer from 1 to 3600"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_accepted(name: str, value: str, accepted: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load({name: value})
    message = str(caught.value)
    assert name in message and repr(value) in message and accepted in message


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("268435456", 256 * 1024**2),
        ("256M", 256 * 1024**2),
        ("256MiB", 256 * 1024**2),
        ("1g", 1024**3),
        ("2 G", 2 * 1024**3),
    ],
)
def test_sizes_accept_bytes_and_binary_units(raw: str, expected: int) -> None:
    assert config.load({"PLAYGROUND_SANDBOX_MEMORY": raw}).quotas.memory_bytes == expected


def test_secrets_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    assert config.load({"PLAYGROUND_SECRET_KEY_FILE": str(secret)}).secret_key == "s3cret"
    with pytest.raises(config.ConfigError, match="PLAYGROUND_SECRET_KEY_FILE"):
        config.load({"PLAYGROUND_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_empty_values_mean_the_default() -> None:
    assert config.load({"PLAYGROUND_PORT": "  "}).port == 8000


def test_the_launcher_refuses_a_bad_setting_before_starting_anything(monkeypatch, capsys) -> None:
    from playground import launcher

    monkeypatch.setenv("PLAYGROUND_SESSION_TTL", "forever")
    assert launcher.main() == 2
    assert "PLAYGROUND_SESSION_TTL='forever'" in capsys.readouterr().err


def test_per_image_quotas_override_the_site_defaults_key_by_key() -> None:
    cfg = load(
        {"PLAYGROUND_SANDBOX_PIDS": "300", "PLAYGROUND_IMAGE_QUOTAS": "dind:memory=2G,disk=1G; busybox:cpus=0.5"}
    )
    assert cfg.quotas_for("dind") == Quotas(2 * 1024**3, 1.0, 300, 1024**3)
    assert cfg.quotas_for("busybox") == Quotas(512 * 1024**2, 0.5, 300, 256 * 1024**2)
    assert cfg.quotas_for("alpine") == cfg.quotas


@pytest.mark.parametrize(
    "value, words",
    [
        ("dind", "does not start with an image name"),
        ("dind:mem=1G", "not key=value with a key among memory, cpus, pids, disk"),
        ("dind:memory=lots", "(dind memory)='lots' is not a size"),
        ("dind:pids=3", "(dind pids)='3' is out of range"),
        ("dind:", "lists no quota"),
    ],
)
def test_a_bad_per_image_quota_names_the_variable_and_the_image(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        load({"PLAYGROUND_IMAGE_QUOTAS": value})
    assert "PLAYGROUND_IMAGE_QUOTAS" in str(caught.value)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("PLAYGROUND_SANDBOX_SUBNET", "8.8.8.0/24", "must be a private range"),
        ("PLAYGROUND_SANDBOX_SUBNET", "10.1.1.1/24", "host bits zero"),
        ("PLAYGROUND_SANDBOX_SUBNET", "10.1.1.0/31", "/30 or larger"),
        ("PLAYGROUND_NETWORK_NAME", "Playground", "1-8 lower-case letters"),
        ("PLAYGROUND_NETWORK_POOL", "-1", "out of range"),
        ("PLAYGROUND_DNS", "10.0.0.53", "not a public address"),
        ("PLAYGROUND_EGRESS", "maybe", "not a yes/no value"),
    ],
)
def test_a_bad_network_setting_stops_start_up_naming_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        load({name: value})
    assert name in str(caught.value)


def test_an_images_recommended_quotas_sit_between_the_site_defaults_and_the_settings() -> None:
    cfg = load({"PLAYGROUND_SANDBOX_PIDS": "300", "PLAYGROUND_IMAGE_QUOTAS": "debian:memory=2G"})
    recommended = {"memory_bytes": 1024**3, "disk_bytes": 512 * 1024**2, "not_a_quota": 1}
    # PLAYGROUND_IMAGE_QUOTAS wins, then the image's metadata, then PLAYGROUND_SANDBOX_*.
    assert cfg.quotas_for("debian", recommended) == Quotas(2 * 1024**3, 1.0, 300, 512 * 1024**2)
    assert cfg.quotas_for("other", recommended) == Quotas(1024**3, 1.0, 300, 512 * 1024**2)
