"""The owner's way into a host-form link: a one-minute token, then a cookie for that host alone.

The main site's ``open`` view (owner only) redirects to ``<host-form link>?__playground_token=<token>``;
the proxy checks the token, sets :data:`COOKIE_NAME` (host-only, HttpOnly, SameSite=Lax) and
redirects to the clean URL. Both values are signed with Django's secret key
(:mod:`django.core.signing`), each with its own salt, so neither can stand for the other.
"""

from __future__ import annotations

import uuid

from django.core import signing

COOKIE_NAME = "pg_port"  # starts with pg_: stripped before forwarding, as every Playground cookie
TOKEN_SECONDS = 60
_TOKEN_SALT = "playground.ports.token"
_COOKIE_SALT = "playground.ports.cookie"


def make_token(session_id: uuid.UUID, host: str, site: str) -> str:
    """A token that lets its bearer into ``host`` (a host-form host name) as ``session_id``'s owner.

    ``site`` is the main site's origin (``scheme://host[:port]``), kept so that the proxy's pages
    can link back to the session.
    """
    return signing.dumps({"s": session_id.hex, "h": host, "b": site}, salt=_TOKEN_SALT, compress=True)


def check_token(token: str, host: str) -> dict[str, str] | None:
    """The token's ``{"s": session hex, "b": site}`` if it is genuine, younger than a minute and for ``host``."""
    try:
        value = signing.loads(token, salt=_TOKEN_SALT, max_age=TOKEN_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict) or value.get("h") != host:
        return None
    return {"s": str(value.get("s")), "b": str(value.get("b", ""))}


def make_cookie(session_id_hex: str, site: str) -> str:
    """The owner cookie's value for one host: the session it proves ownership of, and the main site."""
    return signing.dumps({"s": session_id_hex, "b": site}, salt=_COOKIE_SALT, compress=True)


def check_cookie(value: str | None, max_age: int) -> dict[str, str] | None:
    """The cookie's ``{"s": session hex, "b": site}`` when genuine and younger than ``max_age`` seconds."""
    if not value:
        return None
    try:
        payload = signing.loads(value, salt=_COOKIE_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    return {"s": str(payload.get("s")), "b": str(payload.get("b", ""))}
