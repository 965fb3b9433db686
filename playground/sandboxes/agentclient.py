"""The web tier's handle on a sandbox agent: this machine's, on its unix socket, or another sandbox
host's, over mutual TLS with the site's certificate (docs/hosts.md)."""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING

from django.conf import settings

from sandbox.wire import tls
from sandbox.wire.client import AgentClient, AgentUnavailable, RemoteAgent
from sandbox.wire.envparse import ConfigError

if TYPE_CHECKING:
    from playground.hosts.models import SandboxHost
    from playground.sandboxes.models import Instance, Session


def client(host: SandboxHost | None = None) -> AgentClient:
    """The agent of ``host``, or this machine's (None). For another host, AgentUnavailable (whose
    message says what to do) if the site's certificate cannot be read or the address is bad."""
    if host is None:
        return AgentClient(settings.PLAYGROUND.agent_socket)
    return remote(host.address)


def remote(address: str) -> AgentClient:
    """The agent of another sandbox host listening at ``address`` (host:port), over mutual TLS;
    AgentUnavailable if the address is bad or the site's certificate cannot be read."""
    try:
        return AgentClient(RemoteAgent(tls.parse_address(address, "a sandbox host's address"), site_context()))
    except ConfigError as exc:
        raise AgentUnavailable(address, str(exc)) from None


def of_session(session: Session) -> AgentClient:
    """The agent of the host ``session``'s nodes run on (its ``host`` loaded or loadable)."""
    return client(session.host if session.host_id is not None else None)


def of_instance(instance: Instance) -> AgentClient:
    """The agent of the host ``instance`` runs on: its session's (load it with ``session__host``)."""
    return of_session(instance.session)


@functools.cache
def site_context() -> ssl.SSLContext:
    """The site's side of the mutual TLS, read once from PLAYGROUND_TLS_DIR; ConfigError if it cannot be."""
    return tls.client_context(settings.PLAYGROUND.tls_dir)
