"""The owner's way into a host-form link: a one-minute token, then a cookie for that host alone.

The main site's ``open`` view (owner only) redirects to ``<host-form link>?__playground_token=<token>``;
the proxy checks the token, sets :data:`COOKIE_NAME` (host-only, HttpOnly, SameSite=Lax) and
redirects to the clean URL. Both values are signed with Django's secret key
(:mod:`django.core.signing`), each with its own salt, so neither can stand for the other.
"""

from __future__ import annotations

import hmac
import uuid

from django.core import signing

COOKIE_NAME = "pg_port"  # starts with pg_: stripped before forwarding, as every Playground cookie
TOKEN_SECONDS = 60
_TOKEN_SALT = "playground.ports.token"
_COOKIE_SALT = "playground.ports.cookie"
_PASS_SALT = "playground.ports.pass"


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


def path_pass(session_id_hex: str, node: str, port: int) -> str:
    """The owner's pass of one node port in the path form (``/ports/<short id>/<node>/<port>~<pass>/``).

    The path form's pages run in an opaque origin (see docs/ports.md), so their images, scripts
    and requests carry no SameSite cookie: the owner's access travels in the path instead, for
    this port alone. It lasts as long as the session; ``open_url?form=path`` hands it out.
    """
    return signing.Signer(salt=_PASS_SALT).signature(f"{session_id_hex}:{node}:{port}")[:32]


def check_path_pass(value: str, session_id_hex: str, node: str, port: int) -> bool:
    """Whether ``value`` is the owner's pass of that node port."""
    return bool(value) and hmac.compare_digest(value, path_pass(session_id_hex, node, port))


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
