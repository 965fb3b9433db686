"""What one agent's sandbox networks are called and where they live (the picture is in
:mod:`sandbox.network.namespaces`).

Every name is derived from the agent's name prefix: bridge ``<prefix>br0``, netns and host veths
``<prefix>-<hash of the sandbox id>``, nft tables ``inet <prefix>`` and ``bridge <prefix>``. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")
IFNAMSIZ = 15  # longest interface name the kernel accepts
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,7}")


class NetworkError(Exception):
    """A network step failed; the message says which step, why, and what to do."""


@dataclass(frozen=True)
class NetworkConfig:
    """What one agent's sandbox networks look like. Build it with ``for_prefix`` or ``from_settings``.

    ``name_prefix`` (1-8 lower-case letters/digits, starting with a letter) must be unique per
    agent on a host; ``subnet`` must not overlap any network the host already routes, and must
    hold at least the gateway and one sandbox (a /30 or larger).
    """

    bridge: str  # "<prefix>br0"
    subnet: ipaddress.IPv4Network  # gateway = first address; sandboxes get the rest
    egress: bool  # outbound NAT to public addresses; False = no forwarding at all
    name_prefix: str  # netns/veths "<prefix>-…", nft tables "inet <prefix>" and "bridge <prefix>"
    registry_port: int | None = None  # the one host port sandboxes reach: the registry mirror's front on the gateway

    def __post_init__(self) -> None:
        if not PREFIX_RE.fullmatch(self.name_prefix):
            raise NetworkError(
                f"network name prefix {self.name_prefix!r} is invalid: use 1-8 lower-case "
                "letters or digits starting with a letter (e.g. 'pg')"
            )
        if not (0 < len(self.bridge) <= IFNAMSIZ) or "/" in self.bridge or self.bridge.startswith(self.veth_prefix):
            raise NetworkError(
                f"bridge name {self.bridge!r} is invalid: at most {IFNAMSIZ} characters, "
                f"not starting with {self.veth_prefix!r}; use NetworkConfig.for_prefix()"
            )
        if not isinstance(self.subnet, ipaddress.IPv4Network) or self.subnet.prefixlen > 30:
            raise NetworkError(
                f"sandbox subnet {self.subnet} is invalid: it must be an IPv4 network of "
                "size /30 or larger (e.g. 10.89.0.0/16)"
            )

    @classmethod
    def for_prefix(
        cls,
        name_prefix: str,
        subnet: str | ipaddress.IPv4Network,
        egress: bool = False,
        registry_port: int | None = None,
    ) -> NetworkConfig:
        """The configuration whose bridge is ``<prefix>br0``."""
        try:
            network = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise NetworkError(f"sandbox subnet {subnet!r} is not an IPv4 network: {exc}") from None
        return cls(
            bridge=f"{name_prefix}br0",
            subnet=network,
            egress=egress,
            name_prefix=name_prefix,
            registry_port=registry_port,
        )

    @classmethod
    def from_settings(cls, network: Any) -> NetworkConfig:
        """From ``sandbox.settings.Network`` (PLAYGROUND_NETWORK_NAME, _SANDBOX_SUBNET, _EGRESS, _REGISTRY_PORT)."""
        return cls.for_prefix(network.name, network.subnet, network.egress, network.registry_port)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's address, the sandboxes' default route: the subnet's first address."""
        return self.subnet.network_address + 1

    @property
    def table(self) -> str:
        return self.name_prefix

    @property
    def veth_prefix(self) -> str:
        return f"{self.name_prefix}-"

    def _digest(self, sandbox_id: str) -> str:
        return base64.b32encode(hashlib.sha256(sandbox_id.encode()).digest()).decode().lower()

    def netns_name(self, sandbox_id: str) -> str:
        """``<prefix>-<16 base32 chars of sha256(id)>``."""
        return self.veth_prefix + self._digest(sandbox_id)[:16]

    def veth_name(self, sandbox_id: str) -> str:
        """The host end: ``<prefix>-<hash>``, exactly 15 characters (at least 30 bits of hash)."""
        return (self.veth_prefix + self._digest(sandbox_id))[:IFNAMSIZ]

    def netns_path(self, sandbox_id: str) -> Path:
        return NETNS_DIR / self.netns_name(sandbox_id)
