"""Who may touch a session: the holder of its key, from the Authorization header,
the session's cookie, or (for websockets) the ``key`` query parameter."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.http import HttpRequest


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
