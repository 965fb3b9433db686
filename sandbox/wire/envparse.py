"""Strict parsers of environment variables, shared by the web tier's and the sandbox host's settings.

Each helper reads one variable from a mapping (``os.environ`` or a test's dict) and returns its
value, its default when the variable is unset or blank, or raises :class:`ConfigError` naming
the variable, the bad value and what is accepted. Standard library only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path


class ConfigError(Exception):
    """A setting has a value Playground cannot use; the message says which and why."""


def raw_value(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value without surrounding blanks; None when it is unset or blank."""
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; ``default`` when the variable is unset or empty."""
    raw = raw_value(env, name)
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
    raw = raw_value(env, name)
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
    raw = raw_value(env, name)
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
    raw = raw_value(env, name)
    if raw is None:
        return default
    match = _SIZE.match(raw)
    if not match:
        raise ConfigError(f"{name}={raw!r} is not a size; use bytes or a number with K, M, G or T (e.g. 256M).")
    value = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range; use a size from {lo} to {hi} bytes.")
    return value


NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def env_name(env: Mapping[str, str], name: str, default: str) -> str:
    """A short lower-case identifier (image names, user names): NAME_PATTERN."""
    raw = raw_value(env, name)
    if raw is None:
        return default
    if not NAME_PATTERN.match(raw):
        raise ConfigError(f"{name}={raw!r} is not a valid name; use 1-63 lower-case letters, digits, '.', '_' or '-'.")
    return raw


def env_path(env: Mapping[str, str], name: str, default: Path) -> Path:
    """An absolute path; ``default`` when unset."""
    raw = raw_value(env, name)
    if raw is None:
        return default
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(f"{name}={raw!r} is not an absolute path; give a path starting with '/'.")
    return path


def env_url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of ``schemes``."""
    raw = raw_value(env, name)
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
    raw = raw_value(env, name)
    if raw is not None:
        return raw
    file_name = raw_value(env, name + "_FILE")
    if file_name is None:
        return None
    try:
        return Path(file_name).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={file_name!r} cannot be read ({exc.strerror}); give a readable file.")


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """A comma-separated list of non-empty items."""
    raw = raw_value(env, name)
    if raw is None:
        return list(default)
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{name}={raw!r} has an empty item; give a comma-separated list such as 'a,b'.")
    return items


def env_address(env: Mapping[str, str], name: str, default: str) -> str:
    """An IPv4 or IPv6 address to listen on."""
    raw = raw_value(env, name)
    if raw is None:
        return default
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0.") from None


def env_subnet(env: Mapping[str, str], name: str, default: str) -> str:
    """A private IPv4 network of size /30 or larger, in CIDR form (e.g. 10.89.0.0/16)."""
    raw = raw_value(env, name) or default
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
    raw = raw_value(env, name)
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


def env_networks(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """A comma-separated list of IPv4 or IPv6 networks or addresses, in CIDR form ('none' for an empty list)."""
    if (raw_value(env, name) or "").lower() == "none":
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
