"""The web tier's settings: what Daphne, the Celery worker and beat, and the launcher read from the environment.

``config.load()`` parses and checks them once (Django's settings keep the result as
``settings.PLAYGROUND``), raising :class:`ConfigError` naming the first bad variable, the value
and what is accepted. Only these and the settings shared with the sandbox host
(:mod:`sandbox.wire.shared_settings`) are read, so a bad sandbox-only value (say
PLAYGROUND_CGROUP_PARENT) never stops the web tier: the sandbox host checks its own
(:mod:`sandbox.settings`). Imports nothing from Django. Every variable is in docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.wire import tls
from sandbox.wire.envparse import (
    ConfigError,
    env_address,
    env_bool,
    env_int,
    env_list,
    env_networks,
    env_path,
    env_secret,
    env_size,
    env_url,
    raw_value,
)
from sandbox.wire.shared_settings import Quotas, SharedSettings, load_shared

__all__ = ["REPO_DIR", "Config", "ConfigError", "Quotas", "load"]

REPO_DIR = Path(__file__).resolve().parent.parent


def env_max_ttl(env: Mapping[str, str], name: str, ttl: int) -> int:
    """The longest a session may live with extensions: at least ``ttl``; default 8 h (or ``ttl`` if longer)."""
    value = env_int(env, name, max(8 * 3600, ttl), 5, 30 * 86400)
    if value < ttl:
        raise ConfigError(
            f"{name}={value} is shorter than PLAYGROUND_SESSION_TTL={ttl}; use at least {ttl} "
            "seconds (the same value means sessions cannot be extended)."
        )
    return value


@dataclass(frozen=True)
class Config(SharedSettings):
    """Everything the web tier reads from the environment, parsed and checked."""

    port: int
    bind: str
    session_ttl: int
    idle_timeout: int
    max_sessions: int  # live nodes (sandboxes) of all sessions, despite the name
    max_nodes: int  # live nodes one session may have
    redis_url: str
    database_url: str | None
    reaper_interval: int
    ending_requeue_after: int  # seconds a session may stay ENDING before its destruction is queued again
    debug: bool
    allowed_hosts: list[str]
    secret_key: str | None
    session_extend: int
    session_max_ttl: int
    max_sessions_per_address: int
    creations_per_minute: int
    workshop_joins_per_minute: int  # workshop join attempts one client address may make within a minute
    workshop_prepare_minutes: int  # minutes before a workshop's start its pooled sandboxes are reserved
    workshop_warm_max: int  # pooled sandboxes reserved for all workshops together at most
    recording_retention_days: int  # days a workshop's recordings are kept after its end
    proxy_count: int
    limit_exempt: list[str]
    check_timeout: int  # seconds a lab's setup, check or solve script may run in a sandbox
    check_output_limit: int  # bytes of a script's output kept; the script is stopped beyond them
    upload_limit: int  # bytes of one file uploaded to a node or downloaded from it
    ports_port: int  # the port links' proxy listens on this port of PLAYGROUND_BIND
    ports_domain: str  # host-form port links are <port>-<node>-<short id>.<ports_domain>
    ports_public_scheme: str  # the scheme port links are written with: https behind a TLS proxy
    ports_public_port: int  # the port links are written with; left out when it is the scheme's default
    ports_workers: int  # processes of the port proxy, each accepting on PLAYGROUND_PORTS_PORT (SO_REUSEPORT)
    worker_concurrency: int  # processes of the Celery worker (session starts and ends, the reaper's work)
    web_processes: int  # Daphne processes accepting on PLAYGROUND_PORT (docs/configuration.md)
    templates_dir: Path  # session templates: <name>.toml files (docs/templates.md)
    registry_upstream: str | None  # the registry mirror's upstream (a pull-through cache); None: read-only
    registry_store_port: int  # the mirror's store (docker-registry) listens on 127.0.0.1 at this port
    registry_push_port: int  # the sessions' push registry (docker-registry) listens on 127.0.0.1 at this port
    registry_push_quota: int  # bytes of blobs a session may push (docs/registry.md, Pushing)
    metrics_token: str | None  # /metrics needs it as a bearer token; None: loopback clients only (docs/metrics.md)
    # What the launcher runs: "all" (the single box), or "sandbox-host" (the keeper, the agent and a mirror,
    # the agent serving the site of another machine at agent_listen; docs/hosts.md).
    role: str = "all"
    host_lost_after: int = 60  # seconds another sandbox host may not answer before its sessions end (host_lost)
    agent_listen: str | None = None  # PLAYGROUND_AGENT_LISTEN as written; the sandbox host's settings parse it
    # The web host's front also serves the sandbox hosts' fronts the sessions' pushes here (host, port).
    registry_hosts_listen: tuple[str, int] | None = None
    registry_push_via: tuple[str, int] | None = None  # a sandbox host's front passes pushes there (the above)

    @property
    def web_dir(self) -> Path:
        """Directory owned by the web tier's user: database, secret key."""
        return self.data_dir / "web"


_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def env_domain(env: Mapping[str, str], name: str, default: str) -> str:
    """A DNS name such as ``ports.example.net`` (lower case, no port, no trailing dot)."""
    raw = raw_value(env, name)
    if raw is None:
        return default
    labels = raw.split(".")
    if len(raw) > 200 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ConfigError(
            f"{name}={raw!r} is not a domain name; give lower-case labels of letters, digits and '-' "
            "separated by dots, such as ports.example.net (no scheme, port or trailing dot)."
        )
    return raw


DOCKER_HUB = "https://registry-1.docker.io"


def env_upstream(env: Mapping[str, str], name: str, default: str) -> str | None:
    """An ``http://`` or ``https://`` registry URL without path, query or fragment; ``none``: None."""
    raw = raw_value(env, name)
    if raw == "none":
        return None
    url = env_url(env, name, default, ("http", "https")).rstrip("/")
    parts = urlsplit(url)
    if not parts.hostname or parts.path or parts.query or parts.fragment:
        raise ConfigError(
            f"{name}={raw!r} is not a registry's address; give its scheme and host (and port), such as "
            f"{default} or http://10.0.0.5:5000, or 'none' for a read-only mirror."
        )
    return url


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (exactly)."""
    raw = raw_value(env, name)
    if raw is None:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not accepted; use one of: {', '.join(choices)}.")
    return raw


def load(env: Mapping[str, str] | None = None) -> Config:
    """Read and check the web tier's settings; raises ConfigError on the first bad value."""
    env = os.environ if env is None else env
    ttl = env_int(env, "PLAYGROUND_SESSION_TTL", 14400, 5, 7 * 86400)
    ports_port = env_int(env, "PLAYGROUND_PORTS_PORT", 8001, 1, 65535)
    return Config(
        **vars(load_shared(env)),  # the fields of SharedSettings, read as the sandbox host reads them
        port=env_int(env, "PLAYGROUND_PORT", 8000, 1, 65535),
        bind=env_address(env, "PLAYGROUND_BIND", "127.0.0.1"),
        session_ttl=ttl,
        idle_timeout=env_int(env, "PLAYGROUND_IDLE_TIMEOUT", 1800, 5, 7 * 86400),
        max_sessions=env_int(env, "PLAYGROUND_MAX_SESSIONS", 50, 1, 100000),
        max_nodes=env_int(env, "PLAYGROUND_MAX_NODES", 5, 1, 100),
        redis_url=env_url(env, "PLAYGROUND_REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix")),
        database_url=env_url(env, "DATABASE_URL", "", ("sqlite", "postgres", "postgresql")) or None,
        reaper_interval=env_int(env, "PLAYGROUND_REAPER_INTERVAL", 30, 1, 3600),
        ending_requeue_after=env_int(env, "PLAYGROUND_ENDING_REQUEUE_AFTER", 60, 1, 3600),
        debug=env_bool(env, "PLAYGROUND_DEBUG", False),
        allowed_hosts=env_list(env, "PLAYGROUND_ALLOWED_HOSTS", ["127.0.0.1", "localhost"]),
        secret_key=env_secret(env, "PLAYGROUND_SECRET_KEY"),
        session_extend=env_int(env, "PLAYGROUND_SESSION_EXTEND", 3600, 1, 7 * 86400),
        session_max_ttl=env_max_ttl(env, "PLAYGROUND_SESSION_MAX_TTL", ttl),
        max_sessions_per_address=env_int(env, "PLAYGROUND_MAX_SESSIONS_PER_ADDRESS", 3, 1, 100000),
        creations_per_minute=env_int(env, "PLAYGROUND_CREATIONS_PER_MINUTE", 10, 1, 100000),
        workshop_joins_per_minute=env_int(env, "PLAYGROUND_WORKSHOP_JOINS_PER_MINUTE", 120, 1, 100000),
        workshop_prepare_minutes=env_int(env, "PLAYGROUND_WORKSHOP_PREPARE_MINUTES", 15, 0, 1440),
        workshop_warm_max=env_int(env, "PLAYGROUND_WORKSHOP_WARM_MAX", 100, 0, 1000),
        recording_retention_days=env_int(env, "PLAYGROUND_RECORDING_RETENTION_DAYS", 14, 0, 3650),
        proxy_count=env_int(env, "PLAYGROUND_PROXY_COUNT", 0, 0, 10),
        limit_exempt=env_networks(env, "PLAYGROUND_LIMIT_EXEMPT", ["127.0.0.0/8", "::1/128"]),
        check_timeout=env_int(env, "PLAYGROUND_CHECK_TIMEOUT", 10, 1, 45),
        check_output_limit=env_size(env, "PLAYGROUND_CHECK_OUTPUT_LIMIT", 64 * 1024, 1024, 256 * 1024),
        upload_limit=env_size(env, "PLAYGROUND_UPLOAD_LIMIT", 50 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
        ports_port=ports_port,
        ports_domain=env_domain(env, "PLAYGROUND_PORTS_DOMAIN", "localhost"),
        ports_public_scheme=env_choice(env, "PLAYGROUND_PORTS_PUBLIC_SCHEME", "http", ("http", "https")),
        ports_public_port=env_int(env, "PLAYGROUND_PORTS_PUBLIC_PORT", ports_port, 1, 65535),
        ports_workers=env_int(env, "PLAYGROUND_PORTS_WORKERS", min(os.cpu_count() or 1, 8), 1, 64),
        worker_concurrency=env_int(env, "PLAYGROUND_WORKER_CONCURRENCY", 4, 1, 64),
        web_processes=env_web_processes(env),
        templates_dir=env_path(env, "PLAYGROUND_TEMPLATES_DIR", REPO_DIR / "templates"),
        registry_upstream=env_upstream(env, "PLAYGROUND_REGISTRY_UPSTREAM", DOCKER_HUB),
        registry_store_port=env_int(env, "PLAYGROUND_REGISTRY_STORE_PORT", 5051, 1, 65535),
        registry_push_port=env_int(env, "PLAYGROUND_REGISTRY_PUSH_PORT", 5052, 1, 65535),
        registry_push_quota=env_size(
            env, "PLAYGROUND_REGISTRY_PUSH_QUOTA", 512 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024 * 1024
        ),
        metrics_token=env_secret(env, "PLAYGROUND_METRICS_TOKEN"),
        role=env_role(env),
        host_lost_after=env_int(env, "PLAYGROUND_HOST_LOST_AFTER", 60, 1, 86400),
        agent_listen=raw_value(env, "PLAYGROUND_AGENT_LISTEN"),
        registry_hosts_listen=env_host_port(env, "PLAYGROUND_REGISTRY_HOSTS_LISTEN"),
        registry_push_via=env_host_port(env, "PLAYGROUND_REGISTRY_PUSH_VIA"),
    )


def env_web_processes(env: Mapping[str, str]) -> int:
    """PLAYGROUND_WEB_PROCESSES; more than one share an IPv4 socket, so PLAYGROUND_BIND must be IPv4."""
    processes = env_int(env, "PLAYGROUND_WEB_PROCESSES", 1, 1, 16)
    if processes > 1 and ":" in env_address(env, "PLAYGROUND_BIND", "127.0.0.1"):
        raise ConfigError(
            f"PLAYGROUND_WEB_PROCESSES={processes} needs an IPv4 PLAYGROUND_BIND (the web servers share an "
            "IPv4 socket); bind to 0.0.0.0 or an IPv4 address, or run one web process."
        )
    return processes


def env_host_port(env: Mapping[str, str], name: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port``), or None when empty; ConfigError naming ``name``."""
    raw = raw_value(env, name)
    if raw is None:
        return None
    address = tls.parse_address(raw, name)
    return address.host, address.port


def env_role(env: Mapping[str, str]) -> str:
    """PLAYGROUND_ROLE; a sandbox host cannot do without PLAYGROUND_AGENT_LISTEN."""
    role = env_choice(env, "PLAYGROUND_ROLE", "all", ("all", "sandbox-host"))
    if role == "sandbox-host" and raw_value(env, "PLAYGROUND_AGENT_LISTEN") is None:
        raise ConfigError(
            "PLAYGROUND_ROLE=sandbox-host runs the agent for the site of another machine, so it needs "
            "PLAYGROUND_AGENT_LISTEN, the address:port where that site reaches it (docs/hosts.md)."
        )
    return role
