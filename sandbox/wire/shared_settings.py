"""The settings both the web tier and the sandbox host read, and the one reading of each.

The web tier's settings (``playground.config.Config``) and the sandbox host's
(``sandbox.settings.Settings``) both derive from :class:`SharedSettings`, so the data directory,
the agent's socket, the web user, the default image, terminals per sandbox, the sandbox quotas,
the sandbox subnet and the registry mirror's port have the same defaults and checks on both
sides. Each side still parses them itself: a bad value stops whichever part reads it, naming the
variable. Standard library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sandbox.wire.envparse import (
    NAME_PATTERN,
    ConfigError,
    env_float,
    env_int,
    env_name,
    env_path,
    env_size,
    env_subnet,
    raw_value,
)

REPO_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Quotas:
    """Resource limits applied to every sandbox (site-wide defaults)."""

    memory_bytes: int
    cpus: float
    pids: int
    disk_bytes: int


QUOTA_LIMITS: dict[str, tuple[str, str, float, float]] = {  # key: (Quotas field, parser, lowest, highest)
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
    if kind == "float":
        return field_name, env_float({label: value}, label, 0.0, lo, hi)
    parse = env_size if kind == "size" else env_int
    return field_name, parse({label: value}, label, 0, int(lo), int(hi))


def _whole_bounds(key: str) -> tuple[int, int]:
    """The range of a whole-number quota (all but cpus)."""
    return int(QUOTA_LIMITS[key][2]), int(QUOTA_LIMITS[key][3])


def env_quotas(env: Mapping[str, str]) -> Quotas:
    """The site-wide quotas: PLAYGROUND_SANDBOX_MEMORY, _CPUS, _PIDS and _DISK."""
    return Quotas(
        memory_bytes=env_size(env, "PLAYGROUND_SANDBOX_MEMORY", 512 * 1024**2, *_whole_bounds("memory")),
        cpus=env_float(env, "PLAYGROUND_SANDBOX_CPUS", 1.0, *QUOTA_LIMITS["cpus"][2:]),
        pids=env_int(env, "PLAYGROUND_SANDBOX_PIDS", 256, *_whole_bounds("pids")),
        disk_bytes=env_size(env, "PLAYGROUND_SANDBOX_DISK", 256 * 1024**2, *_whole_bounds("disk")),
    )


def env_image_quotas(env: Mapping[str, str], name: str) -> dict[str, dict[str, object]]:
    """Per-image quota overrides: ``image:key=value,key=value;image2:key=value``.

    Keys are memory, cpus, pids and disk, with the same values and ranges as the site-wide
    PLAYGROUND_SANDBOX_* settings. Returns, per image, only the Quotas fields it sets.
    """
    raw = raw_value(env, name)
    if raw is None:
        return {}
    example = "e.g. 'dind:memory=2G,disk=1G;busybox:pids=128'"
    result: dict[str, dict[str, object]] = {}
    for entry in filter(None, (e.strip() for e in raw.split(";"))):
        image, sep, pairs = entry.partition(":")
        image = image.strip()
        if not sep or not NAME_PATTERN.match(image):
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


def keeper_socket(agent_socket: Path) -> Path:
    """The terminal keeper's socket: ``keeper.sock`` beside the agent's."""
    return agent_socket.parent / "keeper.sock"


@dataclass(frozen=True)
class SharedSettings:
    """What both tiers read: where the host's data and the agent are, who the web tier runs as,
    the default image, terminals per sandbox and the quotas a sandbox of each image gets."""

    data_dir: Path
    agent_socket: Path
    web_user: str
    default_image: str
    max_terminals: int  # terminals (tabs) per sandbox, the first shell included
    quotas: Quotas
    image_quotas: dict[str, dict[str, object]]  # image -> the Quotas fields PLAYGROUND_IMAGE_QUOTAS sets
    sandbox_subnet: str  # the sandboxes' addresses; its first address is the bridge, the gateway
    registry_port: int  # the registry mirror's front listens on the gateway, on this port
    tls_dir: Path  # the hosts' certificate authority and this machine's certificate (sandbox.wire.tls)
    host_max_sandboxes: int  # live and pooled sandboxes on this host (the site places sessions by its room)

    @property
    def registry_mirror(self) -> str:
        """Where sandboxes reach the registry mirror's front: ``<gateway>:<port>``, the gateway being
        the sandbox subnet's first address (the agent's bridge; see docs/registry.md)."""
        gateway = ipaddress.IPv4Network(self.sandbox_subnet).network_address + 1
        return f"{gateway}:{self.registry_port}"

    def quotas_for(self, image: str, recommended: Mapping[str, object] | None = None) -> Quotas:
        """The quotas of a sandbox of ``image``, key by key, the first that sets it winning:
        its PLAYGROUND_IMAGE_QUOTAS entry, then the image's own ``recommended`` quotas (Quotas
        fields, from its metadata), then the site-wide PLAYGROUND_SANDBOX_* defaults."""
        known = {k: v for k, v in (recommended or {}).items() if k in Quotas.__dataclass_fields__}
        chosen: dict[str, Any] = {**known, **self.image_quotas.get(image, {})}  # values parse_quota checked
        return replace(self.quotas, **chosen)


def load_shared(env: Mapping[str, str]) -> SharedSettings:
    """Read and check the shared settings; raises ConfigError on the first bad value."""
    data_dir = env_path(env, "PLAYGROUND_DATA_DIR", REPO_DIR / "var")
    return SharedSettings(
        data_dir=data_dir,
        agent_socket=env_path(env, "PLAYGROUND_AGENT_SOCKET", data_dir / "run" / "agent.sock"),
        web_user=env_name(env, "PLAYGROUND_WEB_USER", "playground"),
        default_image=env_name(env, "PLAYGROUND_DEFAULT_IMAGE", "docker"),
        max_terminals=env_int(env, "PLAYGROUND_MAX_TERMINALS", 8, 1, 64),
        quotas=env_quotas(env),
        image_quotas=env_image_quotas(env, "PLAYGROUND_IMAGE_QUOTAS"),
        sandbox_subnet=env_subnet(env, "PLAYGROUND_SANDBOX_SUBNET", "10.89.0.0/16"),
        registry_port=env_int(env, "PLAYGROUND_REGISTRY_PORT", 5050, 1, 65535),
        tls_dir=env_path(env, "PLAYGROUND_TLS_DIR", data_dir / "tls"),
        host_max_sandboxes=env_int(env, "PLAYGROUND_HOST_MAX_SANDBOXES", 100, 1, 100000),
    )
