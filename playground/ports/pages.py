"""The proxy's own answers: short HTML pages with a sentence and a link back to the session."""

from __future__ import annotations

import html

TITLES = {
    200: "Port links",
    302: "Found",
    400: "Bad request",
    403: "Not shared",
    404: "Not found",
    410: "Session ended",
    431: "Request header too large",
    502: "The node did not answer",
    503: "Nothing listens yet",
}
RETRY_SECONDS = 2


def page(status: int, sentence: str, back: str = "", close: bool = False) -> bytes:
    """A whole HTTP/1.1 response: the page of ``status`` saying ``sentence``, linking to ``back``.

    The waiting page (503) refreshes itself every RETRY_SECONDS and says so in ``Retry-After``.
    """
    title = TITLES.get(status, "Port link")
    refresh = f'<meta http-equiv="refresh" content="{RETRY_SECONDS}">' if status == 503 else ""
    link = f'<p><a href="{html.escape(back)}">Back to the session</a></p>' if back else ""
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p>{link}</body></html>"
    ).encode()
    extra = f"Retry-After: {RETRY_SECONDS}\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
    )
    return head.encode() + body


def redirect(location: str, set_cookie: str = "") -> bytes:
    """A 302 to ``location``, setting ``set_cookie`` (a whole Set-Cookie value) when given."""
    cookie = f"Set-Cookie: {set_cookie}\r\n" if set_cookie else ""
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n{cookie}Cache-Control: no-store\r\nContent-Length: 0\r\n\r\n"
    ).encode("latin-1")
