"""Who may open a node's port, from the database: the session's state, its nodes, the port's options.

The proxy asks :class:`Directory` (the Django ORM, in a thread, each answer kept about a second)
and :func:`decide` turns the answer and the visitor's proof of ownership into a :class:`Verdict`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connection

from playground.ports.links import port_options
from playground.ports.pages import Sentence, say
from playground.sandboxes.models import EndReason, Instance, Session

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Node:
    """One node of a session as the proxy needs it."""

    state: str
    address: str | None
    port_options: dict[str, Any]
    sandbox_id: str = ""  # the agent's name for it (relayed ``connect`` of another host's node)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the proxy needs it: its id, key hash, whether it is live, and its nodes by name."""

    id: uuid.UUID
    key_hash: str
    active: bool
    ended_reason: str
    nodes: dict[str, Node] = field(default_factory=dict)
    # Where the agent of the sandbox host its nodes run on listens, when that is another machine
    # (docs/hosts.md): their addresses are on that host's bridge, reached through its agent.
    agent_address: str | None = None

    def owned_by(self, key: str | None) -> bool:
        """True when ``key`` is the session's key (its ``pg_<hex>`` cookie's value)."""
        return bool(key) and hmac.compare_digest(self.key_hash, Session.hash_key(key or ""))


def load_session(short_id: str) -> SessionInfo | None:
    """The session with ``short_id`` and its nodes, from the database (blocking: run it in a thread)."""
    session = Session.objects.select_related("host").filter(short_id=short_id).first()
    if session is None:
        return None
    nodes = {
        name: Node(state, address, options or {}, instance_id.hex)
        for name, state, address, options, instance_id in Instance.objects.filter(session=session).values_list(
            "name", "state", "address", "port_options", "id"
        )
    }
    active = session.state == Session.State.ACTIVE
    agent = session.host.address if session.host is not None else None
    return SessionInfo(session.id, session.key_hash, active, session.ended_reason, nodes, agent)


def load_session_retrying(short_id: str) -> SessionInfo | None:
    """:func:`load_session`, once more on a fresh connection if the database dropped the old one."""
    try:
        return load_session(short_id)
    except DatabaseError:
        connection.close()
        return load_session(short_id)


class Directory:
    """Sessions by short id, each answer kept ``CACHE_SECONDS``; lookups run in the loop's executor."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self.cache: dict[str, tuple[float, SessionInfo | None]] = {}
        self.pending: dict[str, asyncio.Future[SessionInfo | None]] = {}

    def cached(self, short_id: str) -> tuple[bool, SessionInfo | None]:
        """``(True, the session or None)`` when an answer younger than ``seconds`` is kept, else ``(False, None)``."""
        cached = self.cache.get(short_id)
        if cached is not None and time.monotonic() - cached[0] < self.seconds:
            return True, cached[1]
        return False, None

    def forget(self, short_id: str) -> None:
        """Drop what is kept of ``short_id``: the next lookup asks the database."""
        self.cache.pop(short_id, None)

    async def lookup(self, short_id: str) -> SessionInfo | None:
        """The session with ``short_id`` (None when there is none), at most ``seconds`` old."""
        found, info = self.cached(short_id)
        if found:
            return info
        future = self.pending.get(short_id)
        if future is None:  # one query at a time per session, however many requests wait for it
            future = asyncio.get_running_loop().run_in_executor(None, load_session_retrying, short_id)
            self.pending[short_id] = future
            try:
                info = await future
            finally:
                del self.pending[short_id]
            if len(self.cache) > 10000:
                self.cache.clear()
            self.cache[short_id] = (time.monotonic(), info)
            return info
        return await asyncio.shield(future)


@dataclass(frozen=True)
class Verdict:
    """What to do with a request: ``status`` 0 means forward to ``address``:``port`` (``https``:
    TLS to the node); otherwise answer the page of that status with ``sentence``."""

    status: int
    sentence: Sentence | None = None  # what the page says (status not 0)
    address: str = ""
    https: bool = False
    shared: bool = False
    via: str | None = None  # the agent of another sandbox host to connect through (its address)
    sandbox_id: str = ""  # the node's sandbox, for that agent


def decide(info: SessionInfo | None, node_name: str, port: int, owner: Callable[[], bool]) -> Verdict:
    """Forward, or which page: 404 unknown session or node, 410 ended, 403 not the owner and not
    shared, 503 (the waiting page) while the node is not running yet. A node of another sandbox
    host is forwarded to through that host's agent (``via``). ``owner()`` (whether the
    visitor owns the session) is asked only for a port that is not shared."""
    if info is None:
        return Verdict(404, say("no_session"))
    if not info.active:
        reason = info.ended_reason if info.ended_reason in EndReason.values else "other"
        return Verdict(410, say(f"ended.{reason}"))
    node = info.nodes.get(node_name)
    if node is None:
        return Verdict(404, say("no_node", node=node_name))
    if node.state == Instance.State.DESTROYED:
        return Verdict(410, say("node_removed", node=node_name))
    options = port_options(node.port_options, port)
    if not options.shared and not owner():
        return Verdict(403, say("not_shared", port=port, node=node_name))
    if node.state == Instance.State.FAILED:
        return Verdict(502, say("node_failed", port=port, node=node_name))
    if node.state != Instance.State.RUNNING or not node.address:
        return Verdict(503, say("starting", node=node_name))
    return Verdict(
        0,
        address=node.address,
        https=options.https,
        shared=options.shared,
        via=info.agent_address,
        sandbox_id=node.sandbox_id,
    )
