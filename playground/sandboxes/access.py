"""Who may touch a session: the holder of its key, from the Authorization header,
the session's cookie, or (for websockets) the ``key`` query parameter."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from functools import cache
from urllib.parse import urlsplit

from django.http import HttpRequest

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
