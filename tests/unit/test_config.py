"""Strict settings: a bad value stops whoever reads it with a message naming the variable and the fix.

The web tier reads ``playground.config``, the sandbox host ``sandbox.settings``; what both read
(``sandbox.wire.shared_settings``) is checked by both, and what only one reads never stops the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from playground import config
from sandbox import settings
from sandbox.wire.envparse import ConfigError
from sandbox.wire.shared_settings import Quotas

WEB, HOST = config.load, settings.load


def test_the_web_defaults_follow_the_design() -> None:
    cfg = config.load({})
    assert cfg.port == 8000
    assert cfg.session_ttl == 14400
    assert cfg.default_image == "docker"  # every sandbox has a Docker engine, as in Play with Docker
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"
    assert cfg.database_url is None
    assert cfg.data_dir == config.REPO_DIR / "var"
    assert cfg.agent_socket == cfg.data_dir / "run" / "agent.sock"
    assert cfg.quotas.memory_bytes == 512 * 1024**2
    assert cfg.quotas.pids == 256
    assert cfg.reaper_interval == 30
    assert cfg.ending_requeue_after == 60
    assert cfg.max_terminals == 8
    assert cfg.max_nodes == 5  # Play with Docker's five instances
    assert cfg.web_dir == cfg.data_dir / "web"


def test_the_sandbox_host_defaults_follow_the_design() -> None:
    cfg = settings.load({})
    assert cfg.data_dir == config.REPO_DIR / "var"
    assert cfg.agent_socket == cfg.data_dir / "run" / "agent.sock"
    assert cfg.keeper_socket == cfg.data_dir / "run" / "keeper.sock"
    assert cfg.web_user == "playground"
    assert cfg.agent_dir == cfg.data_dir / "agent"
    assert cfg.images_dir == cfg.data_dir / "images"
    assert cfg.image_cache == cfg.data_dir / "cache"
    assert cfg.replay_bytes == 1024**2
    assert cfg.cgroup_parent == "playground"
    assert cfg.uid_base == 1_000_000_000
    assert cfg.warm_pool == {"docker": 2}
    assert cfg.host_max_sandboxes == 100
    assert cfg.reconcile_interval == 30
    assert cfg.sandbox_ptys == 32
    assert cfg.sandbox_ptys_held == 256
    assert cfg.sandbox_inodes == 65536
    assert cfg.sandbox_nofile == 4096
    assert cfg.network == settings.Network("pg", "10.89.0.0/16", False, 4, ["1.1.1.1", "9.9.9.9"], 5050)
    assert cfg.quotas == config.load({}).quotas
    assert cfg.max_terminals == 8


def test_both_tiers_read_the_shared_settings_alike() -> None:
    env = {
        "PLAYGROUND_DATA_DIR": "/srv/pg",
        "PLAYGROUND_WEB_USER": "web",
        "PLAYGROUND_DEFAULT_IMAGE": "alpine",
        "PLAYGROUND_MAX_TERMINALS": "3",
        "PLAYGROUND_IMAGE_QUOTAS": "dind:memory=2G",
    }
    web, host = config.load(env), settings.load(env)
    for name in ("data_dir", "agent_socket", "web_user", "default_image", "max_terminals", "quotas", "image_quotas"):
        assert getattr(web, name) == getattr(host, name), name
    assert host.warm_pool == {"alpine": 2}


@pytest.mark.parametrize(
    "load,name,value,accepted",
    [
        (WEB, "PLAYGROUND_PORT", "eighty", "integer from 1 to 65535"),
        (WEB, "PLAYGROUND_PORT", "70000", "integer from 1 to 65535"),
        (WEB, "PLAYGROUND_SESSION_TTL", "1", "integer from 5"),
        (WEB, "PLAYGROUND_REDIS_URL", "http://localhost", "redis://"),
        (WEB, "DATABASE_URL", "mysql://x", "postgres://"),
        (WEB, "PLAYGROUND_DEBUG", "maybe", "yes/no"),
        (WEB, "PLAYGROUND_BIND", "localhost:80", "IP address"),
        (WEB, "PLAYGROUND_ALLOWED_HOSTS", "a,,b", "empty item"),
        (WEB, "PLAYGROUND_IDLE_TIMEOUT", "4", "integer from 5"),
        (WEB, "PLAYGROUND_SESSION_EXTEND", "0", "integer from 1"),
        (WEB, "PLAYGROUND_MAX_SESSIONS_PER_ADDRESS", "none", "whole number"),
        (WEB, "PLAYGROUND_CREATIONS_PER_MINUTE", "0", "integer from 1"),
        (WEB, "PLAYGROUND_PROXY_COUNT", "11", "integer from 0 to 10"),
        (WEB, "PLAYGROUND_ENDING_REQUEUE_AFTER", "0", "integer from 1 to 3600"),
        (WEB, "PLAYGROUND_MAX_NODES", "0", "integer from 1 to 100"),
        (WEB, "PLAYGROUND_MAX_NODES", "five", "integer from 1 to 100"),
        (WEB, "PLAYGROUND_REGISTRY_UPSTREAM", "registry-1.docker.io", "http://"),
        (WEB, "PLAYGROUND_REGISTRY_UPSTREAM", "http://mirror.example/v2/", "or 'none' for a read-only mirror"),
        (WEB, "PLAYGROUND_REGISTRY_STORE_PORT", "0", "integer from 1 to 65535"),
        (WEB, "PLAYGROUND_WEB_PROCESSES", "0", "integer from 1 to 16"),
        (WEB, "PLAYGROUND_REGISTRY_HOSTS_LISTEN", "10.0.0.1", "host:port"),
        (WEB, "PLAYGROUND_REGISTRY_PUSH_VIA", "10.0.0.1:x", "host:port"),
        (WEB, "PLAYGROUND_REGISTRY_PORT", "http", "integer from 1 to 65535"),
        (HOST, "PLAYGROUND_REGISTRY_PORT", "65536", "integer from 1 to 65535"),
        (HOST, "PLAYGROUND_REPLAY_BUFFER", "1K", "size from 4096"),
        (HOST, "PLAYGROUND_CGROUP_PARENT", "Bad Name!", "lower-case"),
        (HOST, "PLAYGROUND_SANDBOX_UID_BASE", "1000", "integer from 65536"),
        (HOST, "PLAYGROUND_IMAGE_CACHE", "cache", "absolute path"),
        (HOST, "PLAYGROUND_HOST_MAX_SANDBOXES", "0", "integer from 1"),
        (HOST, "PLAYGROUND_RECONCILE_INTERVAL", "often", "whole number"),
        (HOST, "PLAYGROUND_SANDBOX_PTYS", "8", "integer from 9 to 4096"),  # no more than the terminals
        (HOST, "PLAYGROUND_SANDBOX_PTYS", "5000", "integer from 9 to 4096"),
        (HOST, "PLAYGROUND_SANDBOX_CPU_WEIGHT", "0", "integer from 1"),
        (HOST, "PLAYGROUND_TERMINAL_CPU_WEIGHT", "-1", "integer from 0 to 10000"),
        (HOST, "PLAYGROUND_SANDBOX_INODES", "100", "integer from 1024"),
        (HOST, "PLAYGROUND_SANDBOX_INODES", "64k", "whole number"),
        (HOST, "PLAYGROUND_SANDBOX_NOFILE", "1048577", "integer from 64 to 1048576"),
        (HOST, "PLAYGROUND_SANDBOX_NOFILE", "unlimited", "whole number"),
    ]
    + [
        (load, name, value, accepted)
        for load in (WEB, HOST)
        for name, value, accepted in [
            ("PLAYGROUND_DATA_DIR", "relative/dir", "absolute path"),
            ("PLAYGROUND_AGENT_SOCKET", "agent.sock", "absolute path"),
            ("PLAYGROUND_WEB_USER", "Web User", "lower-case"),
            ("PLAYGROUND_DEFAULT_IMAGE", "Bad Name!", "lower-case"),
            ("PLAYGROUND_SANDBOX_MEMORY", "lots", "256M"),
            ("PLAYGROUND_SANDBOX_MEMORY", "1K", "size from"),
            ("PLAYGROUND_SANDBOX_CPUS", "0", "decimal from"),
            ("PLAYGROUND_MAX_TERMINALS", "0", "integer from 1 to 64"),
            ("PLAYGROUND_MAX_TERMINALS", "eight", "integer from 1 to 64"),
        ]
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_accepted(
    load: Callable[[dict[str, str]], object], name: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load({name: value})
    message = str(caught.value)
    assert name in message
    assert repr(value) in message
    assert accepted in message


@pytest.mark.parametrize(
    "reader,other,name,value",
    [
        (WEB, HOST, name, value)
        for name, value in [
            ("PLAYGROUND_REDIS_URL", "http://localhost"),
            ("PLAYGROUND_SESSION_TTL", "forever"),
            ("PLAYGROUND_PORT", "eighty"),
            ("DATABASE_URL", "mysql://x"),
            ("PLAYGROUND_SECRET_KEY_FILE", "/nonexistent/key"),
            ("PLAYGROUND_CHECK_TIMEOUT", "0"),
            ("PLAYGROUND_REGISTRY_UPSTREAM", "ftp://mirror"),
            ("PLAYGROUND_REGISTRY_STORE_PORT", "0"),
        ]
    ]
    + [
        (HOST, WEB, name, value)
        for name, value in [
            ("PLAYGROUND_CGROUP_PARENT", "Bad Name!"),
            ("PLAYGROUND_SANDBOX_UID_BASE", "1000"),
            ("PLAYGROUND_WARM_POOL", "busybox=2"),
            ("PLAYGROUND_REPLAY_BUFFER", "huge"),
            ("PLAYGROUND_SANDBOX_PTYS", "0"),
            ("PLAYGROUND_SANDBOX_INODES", "0"),
            ("PLAYGROUND_SANDBOX_NOFILE", "0"),
        ]
    ],
)
def test_a_bad_value_only_one_tier_reads_stops_that_tier_and_leaves_the_other_working(
    reader: Callable[[dict[str, str]], object], other: Callable[[dict[str, str]], object], name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        reader({name: value})
    assert other({name: value}) == other({})


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
    with pytest.raises(ConfigError, match="PLAYGROUND_SECRET_KEY_FILE"):
        config.load({"PLAYGROUND_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_empty_values_mean_the_default() -> None:
    assert config.load({"PLAYGROUND_PORT": "  "}).port == 8000
    assert settings.load({"PLAYGROUND_CGROUP_PARENT": "  "}).cgroup_parent == "playground"


def test_the_warm_pool_is_a_count_for_the_default_image_or_one_per_image() -> None:
    assert settings.load({"PLAYGROUND_WARM_POOL": "0"}).warm_pool == {"docker": 0}
    assert settings.load({"PLAYGROUND_WARM_POOL": "busybox:2, alpine:1"}).warm_pool == {"busybox": 2, "alpine": 1}
    with pytest.raises(ConfigError, match=re.escape("PLAYGROUND_WARM_POOL: 'alpine:many' is not image:count")):
        settings.load({"PLAYGROUND_WARM_POOL": "alpine:many"})


def test_the_sandbox_host_settings_can_be_checked_from_the_command_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX_UID_BASE", "1000")
    assert settings.main() == 2
    assert capsys.readouterr().err.startswith("playground: PLAYGROUND_SANDBOX_UID_BASE='1000'")
    monkeypatch.delenv("PLAYGROUND_SANDBOX_UID_BASE")
    assert settings.main() == 0


def test_per_image_quotas_override_the_site_defaults_key_by_key() -> None:
    cfg = config.load(
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
    for load in (WEB, HOST):
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
def test_a_bad_network_setting_stops_the_sandbox_host_naming_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        settings.load({name: value})
    assert name in str(caught.value)


def test_an_images_recommended_quotas_sit_between_the_site_defaults_and_the_settings() -> None:
    cfg = settings.load({"PLAYGROUND_SANDBOX_PIDS": "300", "PLAYGROUND_IMAGE_QUOTAS": "debian:memory=2G"})
    recommended = {"memory_bytes": 1024**3, "disk_bytes": 512 * 1024**2, "not_a_quota": 1}
    # PLAYGROUND_IMAGE_QUOTAS wins, then the image's metadata, then PLAYGROUND_SANDBOX_*.
    assert cfg.quotas_for("debian", recommended) == Quotas(2 * 1024**3, 1.0, 300, 512 * 1024**2)
    assert cfg.quotas_for("other", recommended) == Quotas(1024**3, 1.0, 300, 512 * 1024**2)


def test_the_pty_ends_a_sandbox_may_hold_are_at_least_its_own_devpts_max() -> None:
    assert settings.load({"PLAYGROUND_SANDBOX_PTYS": "1000"}).sandbox_ptys_held == 1000
    with pytest.raises(ConfigError, match="PLAYGROUND_SANDBOX_PTYS_HELD.*from 32"):
        settings.load({"PLAYGROUND_SANDBOX_PTYS_HELD": "31"})


def test_a_sandboxs_ptys_leave_room_beyond_its_terminals_whatever_their_number() -> None:
    assert settings.load({"PLAYGROUND_MAX_TERMINALS": "40"}).sandbox_ptys == 56
    with pytest.raises(ConfigError, match="PLAYGROUND_SANDBOX_PTYS.*from 41"):
        settings.load({"PLAYGROUND_MAX_TERMINALS": "40", "PLAYGROUND_SANDBOX_PTYS": "40"})


def test_the_registry_mirror_is_a_cache_of_docker_hub_on_the_gateway_by_default() -> None:
    web, host = config.load({}), settings.load({})
    assert web.registry_upstream == "https://registry-1.docker.io"
    assert web.registry_store_port == 5051
    assert web.registry_mirror == host.registry_mirror == "10.89.0.1:5050"
    assert host.network.registry_port == 5050


def test_a_bad_sandbox_subnet_stops_both_tiers_as_both_derive_the_mirrors_address_from_it() -> None:
    for load in (WEB, HOST):
        with pytest.raises(ConfigError, match="PLAYGROUND_SANDBOX_SUBNET='8.8.8.0/24' must be a private range"):
            load({"PLAYGROUND_SANDBOX_SUBNET": "8.8.8.0/24"})


def test_the_registry_mirror_follows_the_subnet_and_none_makes_it_read_only() -> None:
    env = {"PLAYGROUND_SANDBOX_SUBNET": "10.7.0.0/24", "PLAYGROUND_REGISTRY_PORT": "5999"}
    assert settings.load(env).registry_mirror == config.load(env).registry_mirror == "10.7.0.1:5999"
    assert config.load({"PLAYGROUND_REGISTRY_UPSTREAM": "none"}).registry_upstream is None
    assert (
        config.load({"PLAYGROUND_REGISTRY_UPSTREAM": "http://10.0.0.5:5000/"}).registry_upstream
        == "http://10.0.0.5:5000"
    )


def test_the_agent_serves_its_unix_socket_alone_unless_told_an_address_and_both_tiers_find_certificates_alike() -> None:
    assert settings.load({}).agent_listen is None
    assert settings.load({}).tls_dir == config.load({}).tls_dir == config.REPO_DIR / "var" / "tls"


@pytest.mark.parametrize("value", ["7700", "agent1:", ":7700", "agent1:99999", "agent 1:7700", "[::1:7700"])
def test_a_bad_listen_address_stops_the_sandbox_host_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("is not host:port")) as caught:
        settings.load({"PLAYGROUND_AGENT_LISTEN": value})
    assert "PLAYGROUND_AGENT_LISTEN" in str(caught.value)


def test_an_agent_told_to_listen_without_its_certificates_stops_saying_which_file_and_how_to_make_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "ca.crt"))) as caught:
        settings.load({"PLAYGROUND_AGENT_LISTEN": "10.0.0.5:7700", "PLAYGROUND_TLS_DIR": str(tmp_path)})
    assert "manage.py hostcerts" in str(caught.value)


def test_a_sandbox_host_role_needs_the_address_where_the_site_reaches_its_agent() -> None:
    assert config.load({}).role == "all"
    with pytest.raises(ConfigError, match="needs PLAYGROUND_AGENT_LISTEN"):
        config.load({"PLAYGROUND_ROLE": "sandbox-host"})
    with pytest.raises(ConfigError, match=re.escape("PLAYGROUND_ROLE='web' is not accepted")):
        config.load({"PLAYGROUND_ROLE": "web"})
    cfg = config.load({"PLAYGROUND_ROLE": "sandbox-host", "PLAYGROUND_AGENT_LISTEN": "10.0.0.5:7700"})
    assert (cfg.role, cfg.agent_listen) == ("sandbox-host", "10.0.0.5:7700")


def test_several_web_processes_need_an_ipv4_bind() -> None:
    assert config.load({"PLAYGROUND_WEB_PROCESSES": "2", "PLAYGROUND_BIND": "0.0.0.0"}).web_processes == 2
    with pytest.raises(ConfigError) as caught:
        config.load({"PLAYGROUND_WEB_PROCESSES": "2", "PLAYGROUND_BIND": "::"})
    assert "needs an IPv4 PLAYGROUND_BIND" in str(caught.value)
