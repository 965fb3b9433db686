"""The sessions' registry passwords, from the database, for the registry front.

:class:`Passwords` answers ``password(namespace)``: the push password of the one active session
whose short id starts with the namespace's digits (:func:`playground.registry.push.password_for`),
None when there is none (ended, never was) or more than one (48 bits: a coincidence the front
treats as no session rather than guess). Each answer is kept ``CACHE_SECONDS``, so a push of many
requests costs one query, and a session that ends is refused within that time. Queries run in the
loop's executor, one at a time per namespace, as :class:`playground.ports.access.Directory` does.
"""

from __future__ import annotations

import asyncio
import time

from django.db import DatabaseError, connection

from playground.registry.push import NAMESPACE, password_for
from playground.sandboxes.models import Session

CACHE_SECONDS = 1.0


def load_password(secret_key: str, namespace: str) -> str | None:
    """The password of ``namespace``'s active session (blocking: run it in a thread)."""
    match = NAMESPACE.fullmatch(namespace)
    if match is None:
        return None
    hashes = list(
        Session.objects.filter(short_id__startswith=match["short"], state=Session.State.ACTIVE).values_list(
            "key_hash", flat=True
        )[:2]
    )
    return password_for(secret_key, hashes[0]) if len(hashes) == 1 else None


def load_password_retrying(secret_key: str, namespace: str) -> str | None:
    """:func:`load_password`, once more on a fresh connection if the database dropped the old one."""
    try:
        return load_password(secret_key, namespace)
    except DatabaseError:
        connection.close()
        return load_password(secret_key, namespace)


class Passwords:
    """Namespaces' passwords, each answer kept ``seconds``."""

    def __init__(self, secret_key: str, seconds: float = CACHE_SECONDS) -> None:
        self.secret_key = secret_key
        self.seconds = seconds
        self.cache: dict[str, tuple[float, str | None]] = {}
        self.pending: dict[str, asyncio.Future[str | None]] = {}

    async def __call__(self, namespace: str) -> str | None:
        cached = self.cache.get(namespace)
        if cached is not None and time.monotonic() - cached[0] < self.seconds:
            return cached[1]
        future = self.pending.get(namespace)
        if future is not None:
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().run_in_executor(None, load_password_retrying, self.secret_key, namespace)
        self.pending[namespace] = future
        try:
            password = await future
        finally:
            del self.pending[namespace]
        if len(self.cache) > 10000:
            self.cache.clear()
        self.cache[namespace] = (time.monotonic(), password)
        return password
