"""The links to a node's port, and the port JSON of the API (docs/ports.md).

A port opens through the port proxy (``python -m playground.ports``) in one of two forms:

- host form ``<scheme>://<port>-<node>-<short id>.<PLAYGROUND_PORTS_DOMAIN>[:<public port>]/``,
  an origin of its own per port;
- path form ``<scheme>://<the main site's host name>[:<public port>]/ports/<short id>/<node>/<port>/``,
  for networks without wildcard DNS.

The scheme and port written in links are ``PLAYGROUND_PORTS_PUBLIC_SCHEME`` and
``PLAYGROUND_PORTS_PUBLIC_PORT`` (behind a TLS proxy: ``https`` and 443, which is left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

from playground.sandboxes.models import Instance

MIN_PORT, MAX_PORT = 1, 65535
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PortOptions:
    """A port's options: ``shared`` (anyone with the link may open it), ``https`` (TLS to the node)."""

    shared: bool = False
    https: bool = False

    def as_json(self) -> dict[str, bool]:
        """Only the options that differ from the defaults (what ``Instance.port_options`` keeps)."""
        return {name: True for name in ("shared", "https") if getattr(self, name)}


def parse_port(raw: object) -> int | None:
    """A port number 1..65535 from a URL part or JSON value; None when it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
            return None
        raw = int(raw)
    if isinstance(raw, int) and MIN_PORT <= raw <= MAX_PORT:
        return raw
    return None


def port_options(options: dict[str, Any], port: int) -> PortOptions:
    """The options of ``port`` in an ``Instance.port_options`` mapping (defaults when absent)."""
    entry = options.get(str(port)) or {}
    return PortOptions(shared=entry.get("shared") is True, https=entry.get("https") is True)


def _origin(host: str) -> str:
    """``scheme://host[:port]`` with the public scheme and port, the port left out when it is the default."""
    config = settings.PLAYGROUND
    scheme, port = config.ports_public_scheme, config.ports_public_port
    return f"{scheme}://{host}" if DEFAULT_PORTS[scheme] == port else f"{scheme}://{host}:{port}"


def host_name(short_id: str, node: str, port: int) -> str:
    """The host-form host name of a node's port: ``<port>-<node>-<short id>.<ports domain>``."""
    return f"{port}-{node}-{short_id}.{settings.PLAYGROUND.ports_domain}"


def host_url(short_id: str, node: str, port: int) -> str:
    """The host-form link of a node's port."""
    return f"{_origin(host_name(short_id, node, port))}/"


def path_prefix(short_id: str, node: str, port: int, owner_pass: str = "") -> str:
    """The path-form prefix of a node's port (with the owner's pass, if given), without the trailing slash."""
    return f"/ports/{short_id}/{node}/{port}" + (f"~{owner_pass}" if owner_pass else "")


def path_url(request: HttpRequest, short_id: str, node: str, port: int, owner_pass: str = "") -> str:
    """The path-form link: on the host name the visitor reached the main site at."""
    domain, _ = split_domain_port(request.get_host())  # an IPv6 literal keeps its brackets
    return f"{_origin(domain)}{path_prefix(short_id, node, port, owner_pass)}/"


def open_path(instance: Instance, port: int) -> str:
    """The main site's path that hands the owner over to the host-form link (see api.open_port)."""
    return f"/api/sessions/{instance.session_id.hex}/instances/{instance.name}/ports/{port}/open/"


def port_json(instance: Instance, port: int, listening: bool, request: HttpRequest) -> dict[str, Any]:
    """The port JSON of the API (contract: docs/ports.md).

    ``{"port", "listening", "shared", "https", "url", "path_url", "open_url"}``; ``instance``
    must have its session loaded or loadable (``short_id`` is read from it).
    """
    options = port_options(instance.port_options, port)
    short_id = instance.session.short_id
    return {
        "port": port,
        "listening": listening,
        "shared": options.shared,
        "https": options.https,
        "url": host_url(short_id, instance.name, port),
        "path_url": path_url(request, short_id, instance.name, port),
        "open_url": open_path(instance, port),
    }
