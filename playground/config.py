"""Strict parsing of Playground's environment variables.

Every setting the project reads from the environment is parsed here, by small helpers that
raise :class:`ConfigError` naming the variable, the bad value and what is accepted. The module
imports nothing from Django so that the sandbox agent, the launcher and Django's settings all
share one reading of the environment. Every variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
USERNS_SIZE = 65536  # ids mapped into every sandbox's user namespace: 0-65535 inside


class ConfigError(Exception):
    """A setting has a value Playground cannot use; the message says which and why."""


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; ``default`` when the variable is unset or empty."""
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; use an integer from {lo} to {hi}.")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range; use an integer from {lo} to {hi}.")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    """A decimal number in [lo, hi]; ``default`` when unset."""
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; use a decimal from {lo} to {hi}.")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range; use a decimal from {lo} to {hi}.")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when unset."""
    raw = _raw(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a yes/no value; use 1, true, yes, on, 0, false, no or off.")


_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)(i?B?)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def env_size(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A byte size such as ``268435456``, ``256M``, ``256MiB`` or ``1G`` (binary units)."""
    raw = _raw(env, name)
    if raw is None:
        return default
    match = _SIZE.match(raw)
    if not match:
        raise ConfigError(f"{name}={raw!r} is not a size; use bytes or a number with K, M, G or T (e.g. 256M).")
    value = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range; use a size from {lo} to {hi} bytes.")
    return value


_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def env_name(env: Mapping[str, str], name: str, default: str) -> str:
    """A short lower-case identifier (image names, user names)."""
    raw = _raw(env, name)
    if raw is None:
        return default
    if not _NAME.match(raw):
        raise ConfigError(f"{name}={raw!r} is not a valid name; use 1-63 lower-case letters, digits, '.', '_' or '-'.")
    return raw


def env_path(env: Mapping[str, str], name: str, default: Path) -> Path:
    """An absolute path; ``default`` when unset."""
    raw = _raw(env, name)
    if raw is None:
        return default
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(f"{name}={raw!r} is not an absolute path; give a path starting with '/'.")
    return path


def env_url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of ``schemes``."""
    raw = _raw(env, name)
    if raw is None:
        return default
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in schemes:
        raise ConfigError(
            f"{name}={raw!r} is not a usable URL; it must start with one of: "
            + ", ".join(f"{s}://" for s in schemes)
            + "."
        )
    return raw


def env_secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE``; None when neither is set."""
    raw = _raw(env, name)
    if raw is not None:
        return raw
    file_name = _raw(env, name + "_FILE")
    if file_name is None:
        return None
    try:
        return Path(file_name).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={file_name!r} cannot be read ({exc.strerror}); give a readable file.")


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """A comma-separated list of non-empty items."""
    raw = _raw(env, name)
    if raw is None:
        return list(default)
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{name}={raw!r} has an empty item; give a comma-separated list such as 'a,b'.")
    return items


def env_address(env: Mapping[str, str], name: str, default: str) -> str:
    """An IPv4 or IPv6 address to listen on."""
    import ipaddress

    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0.") from None


def env_subnet(env: Mapping[str, str], name: str, default: str) -> str:
    """A private IPv4 network of size /30 or larger, in CIDR form (e.g. 10.89.0.0/16)."""
    import ipaddress

    raw = _raw(env, name) or default
    try:
        network = ipaddress.IPv4Network(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not an IPv4 network with its host bits zero; use CIDR form such as 10.89.0.0/16."
        ) from None
    if network.prefixlen > 30 or not network.is_private:
        raise ConfigError(
            f"{name}={raw!r} must be a private range (10/8, 172.16/12, 192.168/16) "
            "of size /30 or larger, such as 10.89.0.0/16."
        )
    return str(network)


_NETWORK_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")


def env_network_name(env: Mapping[str, str], name: str, default: str) -> str:
    """1-8 lower-case letters or digits starting with a letter (it prefixes interface names)."""
    raw = _raw(env, name)
    if raw is None:
        return default
    if not _NETWORK_NAME.match(raw):
        raise ConfigError(
            f"{name}={raw!r} is not a valid network name; use 1-8 lower-case letters or "
            "digits starting with a letter, such as 'pg'."
        )
    return raw


def env_addresses(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """A comma-separated list of public IPv4 addresses (nameservers a sandbox may reach)."""
    import ipaddress

    items = env_list(env, name, default)
    for item in items:
        try:
            address = ipaddress.IPv4Address(item)
        except ValueError:
            raise ConfigError(
                f"{name}: {item!r} is not an IPv4 address; give addresses such as 1.1.1.1,9.9.9.9."
            ) from None
        if not address.is_global:
            raise ConfigError(
                f"{name}: {item} is not a public address, and sandboxes may only reach public "
                "addresses; give public nameservers such as 1.1.1.1."
            )
    return items


def env_max_ttl(env: Mapping[str, str], name: str, ttl: int) -> int:
    """The longest a session may live with extensions: at least ``ttl``; default 8 h (or ``ttl`` if longer)."""
    value = env_int(env, name, max(8 * 3600, ttl), 5, 30 * 86400)
    if value < ttl:
        raise ConfigError(
            f"{name}={value} is shorter than PLAYGROUND_SESSION_TTL={ttl}; use at least {ttl} "
            "seconds (the same value means sessions cannot be extended)."
        )
    return value


def env_networks(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """A comma-separated list of IPv4 or IPv6 networks or addresses, in CIDR form ('none' for an empty list)."""
    import ipaddress

    if (_raw(env, name) or "").lower() == "none":
        return []
    networks = []
    for item in env_list(env, name, default):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name}: {item!r} is not an address or network; give addresses or networks "
                "such as 127.0.0.0/8,203.0.113.7, or 'none'."
            ) from None
    return networks


@dataclass(frozen=True)
class Network:
    """How sandboxes are networked (see sandbox/network/namespaces.py)."""

    name: str  # bridge "<name>br0", netns and veths "<name>-...", nft table "inet <name>"
    subnet: str  # the gateway takes the first address, sandboxes the rest
    egress: bool  # outbound NAT to public addresses only
    pool: int  # network namespaces kept ready so creation does not wait for them
    dns: list[str]  # nameservers written to each sandbox's /etc/resolv.conf when egress is on


@dataclass(frozen=True)
class Quotas:
    """Resource limits applied to every sandbox (site-wide defaults)."""

    memory_bytes: int
    cpus: float
    pids: int
    disk_bytes: int


QUOTA_LIMITS = {  # key in PLAYGROUND_IMAGE_QUOTAS: (field, parser, lowest, highest)
    "memory": ("memory_bytes", "size", 16 * 1024**2, 1024**4),
    "cpus": ("cpus", "float", 0.01, 1024.0),
    "pids": ("pids", "int", 8, 1_000_000),
    "disk": ("disk_bytes", "size", 16 * 1024**2, 1024**4),
}


def parse_quota(key: str, value: str, label: str) -> tuple[str, object]:
    """One quota ``key=value`` (memory, cpus, pids or disk) as ``(Quotas field, value)``.

    ``label`` names where the value came from in the error (a variable, or an image recipe).
    """
    if key not in QUOTA_LIMITS:
        raise ConfigError(f"{label}: {key!r} is not a quota; use one of {', '.join(QUOTA_LIMITS)}.")
    field_name, kind, lo, hi = QUOTA_LIMITS[key]
    parse = {"size": env_size, "float": env_float, "int": env_int}[kind]
    return field_name, parse({label: value}, label, 0, lo, hi)


def env_image_quotas(env: Mapping[str, str], name: str) -> dict[str, dict[str, object]]:
    """Per-image quota overrides: ``image:key=value,key=value;image2:key=value``.

    Keys are memory, cpus, pids and disk, with the same values and ranges as the site-wide
    PLAYGROUND_SANDBOX_* settings. Returns, per image, only the Quotas fields it sets.
    """
    raw = _raw(env, name)
    if raw is None:
        return {}
    example = "e.g. 'dind:memory=2G,disk=1G;busybox:pids=128'"
    result: dict[str, dict[str, object]] = {}
    for entry in filter(None, (e.strip() for e in raw.split(";"))):
        image, sep, pairs = entry.partition(":")
        image = image.strip()
        if not sep or not _NAME.match(image):
            raise ConfigError(f"{name}: {entry!r} does not start with an image name and ':'; {example}.")
        overrides: dict[str, object] = {}
        for pair in filter(None, (p.strip() for p in pairs.split(","))):
            key, eq, value = (part.strip() for part in pair.partition("="))
            if not eq or key not in QUOTA_LIMITS:
                raise ConfigError(
                    f"{name}: {pair!r} (image {image}) is not key=value with a key among "
                    f"{', '.join(QUOTA_LIMITS)}; {example}."
                )
            field_name, parsed = parse_quota(key, value, f"{name} ({image} {key})")
            overrides[field_name] = parsed
        if not overrides:
            raise ConfigError(f"{name}: image {image} lists no quota; {example}.")
        result[image] = overrides
    return result


def env_warm_pool(env: Mapping[str, str], name: str, default_image: str) -> dict[str, int]:
    """Ready sandboxes per image: ``2`` (for the default image) or ``busybox:2,alpine:1``."""
    raw = _raw(env, name)
    if raw is None:
        return {default_image: 2}
    if raw.isdigit():
        return {default_image: env_int(env, name, 1, 0, 1000)}
    sizes: dict[str, int] = {}
    for item in env_list(env, name, []):
        image, sep, count = (part.strip() for part in item.partition(":"))
        if not sep or not _NAME.match(image) or not count.isdigit() or int(count) > 1000:
            raise ConfigError(
                f"{name}: {item!r} is not image:count; give a number for the default image "
                "(e.g. 2) or a list such as 'busybox:2,alpine:1' (counts 0-1000)."
            )
        sizes[image] = int(count)
    return sizes


@dataclass(frozen=True)
class Config:
    """Everything Playground reads from the environment, parsed and checked."""

    port: int
    bind: str
    data_dir: Path
    session_ttl: int
    idle_timeout: int
    max_sessions: int
    default_image: str
    redis_url: str
    database_url: str | None
    reaper_interval: int
    ending_requeue_after: int  # seconds a session may stay ENDING before its destruction is queued again
    agent_socket: Path
    web_user: str
    debug: bool
    allowed_hosts: list[str]
    secret_key: str | None
    quotas: Quotas
    image_quotas: dict[str, dict[str, object]]  # image -> the Quotas fields PLAYGROUND_IMAGE_QUOTAS sets
    image_cache: Path  # built images and downloaded packages, kept across builds
    replay_bytes: int
    max_terminals: int  # terminals (tabs) per sandbox, the first shell included
    cgroup_parent: str
    uid_base: int
    network: Network
    warm_pool: dict[str, int]  # image -> sandboxes kept ready
    host_max_sandboxes: int  # live and pooled sandboxes on this host
    reconcile_interval: int  # seconds between the agent's comparisons of host and bookkeeping
    session_extend: int
    session_max_ttl: int
    max_sessions_per_address: int
    creations_per_minute: int
    proxy_count: int
    limit_exempt: list[str]
    check_timeout: int  # seconds a lab's setup, check or solve script may run in a sandbox
    check_output_limit: int  # bytes of a script's output kept; the script is stopped beyond them

    def quotas_for(self, image: str, recommended: Mapping[str, object] | None = None) -> Quotas:
        """The quotas of a sandbox of ``image``, key by key, the first that sets it winning:
        its PLAYGROUND_IMAGE_QUOTAS entry, then the image's own ``recommended`` quotas (Quotas
        fields, from its metadata), then the site-wide PLAYGROUND_SANDBOX_* defaults."""
        known = {k: v for k, v in (recommended or {}).items() if k in Quotas.__dataclass_fields__}
        return replace(self.quotas, **{**known, **self.image_quotas.get(image, {})})

    @property
    def web_dir(self) -> Path:
        """Directory owned by the web tier's user: database, secret key."""
        return self.data_dir / "web"

    @property
    def agent_dir(self) -> Path:
        """Directory owned by the agent (root only): sandboxes and runtime state."""
        return self.data_dir / "agent"

    @property
    def images_dir(self) -> Path:
        """The image store: one read-only directory tree per image."""
        return self.data_dir / "images"


def load(env: Mapping[str, str] | None = None) -> Config:
    """Read and check every setting; raises ConfigError on the first bad value."""
    env = os.environ if env is None else env
    data_dir = env_path(env, "PLAYGROUND_DATA_DIR", REPO_DIR / "var")
    ttl = env_int(env, "PLAYGROUND_SESSION_TTL", 14400, 5, 7 * 86400)
    quotas = Quotas(
        memory_bytes=env_size(env, "PLAYGROUND_SANDBOX_MEMORY", 512 * 1024**2, *QUOTA_LIMITS["memory"][2:]),
        cpus=env_float(env, "PLAYGROUND_SANDBOX_CPUS", 1.0, *QUOTA_LIMITS["cpus"][2:]),
        pids=env_int(env, "PLAYGROUND_SANDBOX_PIDS", 256, *QUOTA_LIMITS["pids"][2:]),
        disk_bytes=env_size(env, "PLAYGROUND_SANDBOX_DISK", 256 * 1024**2, *QUOTA_LIMITS["disk"][2:]),
    )
    return Config(
        port=env_int(env, "PLAYGROUND_PORT", 8000, 1, 65535),
        bind=env_address(env, "PLAYGROUND_BIND", "127.0.0.1"),
        data_dir=data_dir,
        session_ttl=ttl,
        idle_timeout=env_int(env, "PLAYGROUND_IDLE_TIMEOUT", 1800, 5, 7 * 86400),
        max_sessions=env_int(env, "PLAYGROUND_MAX_SESSIONS", 50, 1, 100000),
        default_image=env_name(env, "PLAYGROUND_DEFAULT_IMAGE", "busybox"),
        redis_url=env_url(env, "PLAYGROUND_REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix")),
        database_url=env_url(env, "DATABASE_URL", "", ("sqlite", "postgres", "postgresql")) or None,
        reaper_interval=env_int(env, "PLAYGROUND_REAPER_INTERVAL", 30, 1, 3600),
        ending_requeue_after=env_int(env, "PLAYGROUND_ENDING_REQUEUE_AFTER", 60, 1, 3600),
        agent_socket=env_path(env, "PLAYGROUND_AGENT_SOCKET", data_dir / "run" / "agent.sock"),
        web_user=env_name(env, "PLAYGROUND_WEB_USER", "playground"),
        debug=env_bool(env, "PLAYGROUND_DEBUG", False),
        allowed_hosts=env_list(env, "PLAYGROUND_ALLOWED_HOSTS", ["127.0.0.1", "localhost"]),
        secret_key=env_secret(env, "PLAYGROUND_SECRET_KEY"),
        quotas=quotas,
        image_quotas=env_image_quotas(env, "PLAYGROUND_IMAGE_QUOTAS"),
        image_cache=env_path(env, "PLAYGROUND_IMAGE_CACHE", data_dir / "cache"),
        replay_bytes=env_size(env, "PLAYGROUND_REPLAY_BUFFER", 1024**2, 4096, 64 * 1024**2),
        max_terminals=env_int(env, "PLAYGROUND_MAX_TERMINALS", 8, 1, 64),
        cgroup_parent=env_name(env, "PLAYGROUND_CGROUP_PARENT", "playground"),
        uid_base=env_int(env, "PLAYGROUND_SANDBOX_UID_BASE", 1_000_000_000, 65536, 2**32 - 2 - USERNS_SIZE),
        network=Network(
            name=env_network_name(env, "PLAYGROUND_NETWORK_NAME", "pg"),
            subnet=env_subnet(env, "PLAYGROUND_SANDBOX_SUBNET", "10.89.0.0/16"),
            egress=env_bool(env, "PLAYGROUND_EGRESS", False),
            pool=env_int(env, "PLAYGROUND_NETWORK_POOL", 4, 0, 256),
            dns=env_addresses(env, "PLAYGROUND_DNS", ["1.1.1.1", "9.9.9.9"]),
        ),
        warm_pool=env_warm_pool(env, "PLAYGROUND_WARM_POOL", env_name(env, "PLAYGROUND_DEFAULT_IMAGE", "busybox")),
        host_max_sandboxes=env_int(env, "PLAYGROUND_HOST_MAX_SANDBOXES", 100, 1, 100000),
        reconcile_interval=env_int(env, "PLAYGROUND_RECONCILE_INTERVAL", 30, 1, 3600),
        session_extend=env_int(env, "PLAYGROUND_SESSION_EXTEND", 3600, 1, 7 * 86400),
        session_max_ttl=env_max_ttl(env, "PLAYGROUND_SESSION_MAX_TTL", ttl),
        max_sessions_per_address=env_int(env, "PLAYGROUND_MAX_SESSIONS_PER_ADDRESS", 3, 1, 100000),
        creations_per_minute=env_int(env, "PLAYGROUND_CREATIONS_PER_MINUTE", 10, 1, 100000),
        proxy_count=env_int(env, "PLAYGROUND_PROXY_COUNT", 0, 0, 10),
        limit_exempt=env_networks(env, "PLAYGROUND_LIMIT_EXEMPT", ["127.0.0.0/8", "::1/128"]),
        check_timeout=env_int(env, "PLAYGROUND_CHECK_TIMEOUT", 10, 1, 45),
        check_output_limit=env_size(env, "PLAYGROUND_CHECK_OUTPUT_LIMIT", 64 * 1024, 1024, 256 * 1024),
    )
