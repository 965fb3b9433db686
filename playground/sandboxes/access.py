"""Who may touch a session: the holder of its key, from the Authorization header,
the session's cookie, or (for websockets) the ``key`` query parameter; and which visitor
addresses per-address limits count."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.http import HttpRequest
from django.http.cookie import parse_cookie

from playground import i18n
from playground.sandboxes.models import COOKIE_PREFIX, Instance, Session
from playground.sandboxes.wsprotocol import CLOSE_FORBIDDEN, CLOSE_UNKNOWN
from sandbox.wire.protocol import MAX_TERMINAL

log = logging.getLogger("playground.api")


def parse_session_id(raw: str) -> uuid.UUID | None:
    """A session id from a URL, or None if it is not one (which callers answer with 404)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def key_from_request(request: HttpRequest, cookie_name: str) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme == "Session" and value.strip():
        return value.strip()
    return request.COOKIES.get(cookie_name)


def keys_from_cookies(cookies: Mapping[str, str], most: int) -> dict[uuid.UUID, str]:
    """The session keys a browser's cookies hold, by session id: at most ``most`` of them (the
    first in the header), from the cookies each start set (``pg_<session id hex>``)."""
    keys: dict[uuid.UUID, str] = {}
    for name, value in cookies.items():
        if len(keys) >= most:
            break
        if name.startswith(COOKIE_PREFIX) and value:
            session_id = parse_session_id(name.removeprefix(COOKIE_PREFIX))
            if session_id is not None and session_id.hex == name.removeprefix(COOKIE_PREFIX):
                keys[session_id] = value
    return keys


def terminal_refusal(
    scope: dict[str, Any],
    session: Session | None,
    instance: Instance | None,
    terminal: int,
    allowed_hosts: Collection[str],
) -> tuple[int, str, str] | None:
    """Why a terminal websocket may not connect, as ``(close code, error code, sentence)``; None if it may.

    Unknown (4404) when the session, its instance or the terminal number does not exist;
    forbidden (4403) from another site's page or without the session's key.
    """
    if session is None or instance is None or terminal > MAX_TERMINAL:
        return CLOSE_UNKNOWN, "unknown_session", "There is no such session or instance."
    if not websocket_origin_allowed(scope, allowed_hosts) or not session.key_matches(
        websocket_key(scope, session.cookie_name)
    ):
        return CLOSE_FORBIDDEN, "forbidden", "This terminal belongs to another session's key."
    return None


def websocket_key(scope: dict[str, Any], cookie_name: str) -> str | None:
    """The key a websocket presents: its ``key`` query parameter, else the session's cookie."""
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    if query.get("key"):
        return query["key"][0]
    headers = dict(scope.get("headers", []))
    return parse_cookie(headers.get(b"cookie", b"").decode("latin-1")).get(cookie_name)


def viewer_language(scope: dict[str, Any]) -> str:
    """The language of a websocket's viewer: its language switch's cookie, else its Accept-Language."""
    headers = dict(scope.get("headers", []))
    cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    return i18n.choose(cookies.get(i18n.LANGUAGE_COOKIE), headers.get(b"accept-language", b"").decode("latin-1"))


def websocket_origin_allowed(scope: dict[str, Any], allowed_hosts: Collection[str]) -> bool:
    """Browsers send Origin; it must be one of ``allowed_hosts`` (or that be ``*``). Scripts may send none."""
    origin = dict(scope.get("headers", [])).get(b"origin")
    if origin is None:
        return True
    host = (urlsplit(origin.decode("latin-1")).hostname or "").lower()
    return host in allowed_hosts or "*" in allowed_hosts


def cross_site(request: HttpRequest) -> bool:
    """True when a browser sent this request from another site (CSRF); scripts send no Origin."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.get_host()


def client_address(request: HttpRequest, proxy_count: int) -> str | None:
    """The visitor's IP address, which per-address limits count.

    Daphne's ``REMOTE_ADDR`` when ``proxy_count`` is 0. Behind ``proxy_count`` trusted reverse
    proxies, each of which appends the address it received from to ``X-Forwarded-For``, it is
    the ``proxy_count``-th entry from the right (entries further left are the client's to
    invent). A header too short or not an address falls back to ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    if proxy_count == 0:
        if "X-Forwarded-For" in request.headers:
            _warn_unconfigured_proxy()
        return remote
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    if len(hops) < proxy_count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxy_count]))
    except ValueError:
        return remote


def limited(address: str | None, exempt: list[str]) -> bool:
    """True when per-address limits apply to ``address`` (known, and in none of the ``exempt`` networks)."""
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    return not any(ip in ipaddress.ip_network(network) for network in exempt)


@cache
def _warn_unconfigured_proxy() -> None:
    """Logged once per process: limits would count the proxy, not the visitors behind it."""
    log.warning(
        "requests carry X-Forwarded-For but PLAYGROUND_PROXY_COUNT is 0, so per-address limits count "
        "the proxy's address; set PLAYGROUND_PROXY_COUNT to the number of proxies in front of Playground"
    )
