"""Mutual TLS between the site and the agents of other sandbox hosts (docs/hosts.md).

One certificate authority, made by ``manage.py hostcerts`` on the web host, signs two kinds of
certificate: the site's, for TLS clients only (extended key usage ``clientAuth``), and one per
sandbox host, for TLS servers only (``serverAuth``), naming the address the site dials. So an
agent accepts the site and nothing else, not even another host's agent; and the site talks only
to an agent whose certificate names the address it dialled. Both ends speak TLS 1.3 alone.

The files, in PLAYGROUND_TLS_DIR (one directory per machine):

================  ==============================================  ==================
file              what                                            on
================  ==============================================  ==================
``ca.crt``        the authority's certificate                     every machine
``ca.key``        the authority's private key                     the web host only
``site.crt``      the site's client certificate                   the web host
``site.key``      its private key                                 the web host
``agent.crt``     this sandbox host's server certificate          each sandbox host
``agent.key``     its private key                                 each sandbox host
``registry.crt``  the web host's server certificate for the       the web host
                  sandbox hosts' registry link
``registry.key``  its private key                                 the web host
================  ==============================================  ==================

The link from a sandbox host's registry front to the web host's (the sessions' pushes, docs/hosts.md)
is TLS 1.3 too, server side only: the sandbox host checks the web host's ``registry.crt`` against
``ca.crt``; the client is the session itself, whose credentials each request carries.

Standard library only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from sandbox.wire.envparse import ConfigError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SITE_CERT, SITE_KEY = "site.crt", "site.key"
AGENT_CERT, AGENT_KEY = "agent.crt", "agent.key"
REGISTRY_CERT, REGISTRY_KEY = "registry.crt", "registry.key"
MAKE = "make them on the web host with 'manage.py hostcerts' (docs/hosts.md)"


@dataclass(frozen=True)
class Address:
    """Where an agent listens for the site, or where the site dials one: ``host:port``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, label: str) -> Address:
    """``host:port`` (``[v6]:port`` for an IPv6 address) as an Address; ConfigError naming ``label``."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c in host for c in " /[]"):
        raise ConfigError(f"{label}={text!r} is not host:port; e.g. 10.0.0.5:7700 or agent1.example.org:7700.")
    return Address(host, int(port))


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """The agent's side: its own certificate, and only clients that show a certificate of the
    authority made for TLS clients (the site's). ConfigError saying which file is missing or bad."""
    context = _tls13(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED  # OpenSSL then checks the client's key usage: clientAuth
    _load(context, tls_dir, AGENT_CERT, AGENT_KEY, "this sandbox host's")
    return context


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """The site's side: its client certificate, and only agents whose certificate the authority
    made for TLS servers and whose names hold the address dialled. ConfigError as above."""
    context = _tls13(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname already
    _load(context, tls_dir, SITE_CERT, SITE_KEY, "the site's")
    return context


def registry_server_context(tls_dir: Path) -> ssl.SSLContext:
    """The web host's registry front's side of the sandbox hosts' link: its ``registry.crt``, no
    client certificate asked (each request carries its session's credentials). ConfigError as above."""
    context = _tls13(ssl.PROTOCOL_TLS_SERVER)
    _load_own(context, tls_dir, REGISTRY_CERT, REGISTRY_KEY, "the web host's registry")
    return context


def authority_context(ca_file: Path) -> ssl.SSLContext:
    """A sandbox host's registry front's side of that link: only a server whose certificate the
    authority in ``ca_file`` made for TLS servers, naming the address dialled. ConfigError as above."""
    context = _tls13(ssl.PROTOCOL_TLS_CLIENT)
    _load_authority(context, ca_file)
    return context


def _tls13(protocol: ssl._SSLMethod) -> ssl.SSLContext:
    """A context of ``protocol`` (server or client side) that speaks TLS 1.3 alone, as both ends do."""
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _load(context: ssl.SSLContext, tls_dir: Path, cert: str, key: str, whose: str) -> None:
    _load_authority(context, tls_dir / CA_CERT)
    _load_own(context, tls_dir, cert, key, whose)


def _load_authority(context: ssl.SSLContext, ca_file: Path) -> None:
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read the hosts' certificate authority {ca_file} ({exc}); {MAKE}")


def _load_own(context: ssl.SSLContext, tls_dir: Path, cert: str, key: str, whose: str) -> None:
    try:
        context.load_cert_chain(str(tls_dir / cert), str(tls_dir / key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read {whose} certificate {tls_dir / cert} and key {tls_dir / key} ({exc}); {MAKE}")
