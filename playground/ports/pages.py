"""The proxy's own answers: short HTML pages with a sentence and a link back to the session.

Each page is in the visitor's language (:func:`language_of`: the switch's cookie, else the
browser's Accept-Language, as for the site's pages); its sentences are keys of the catalogues
``frontend/src/i18n/<language>.json`` (``proxy.*``), with holes filled from a :class:`Sentence`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from playground import i18n

REASONS = {  # the HTTP reason phrase of each status the proxy answers; each has a title, proxy.title.<status>
    200: "OK",
    302: "Found",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
RETRY_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Sentence:
    """What a page says: the catalogue key ``proxy.<key>`` and the values of its holes."""

    key: str
    holes: tuple[tuple[str, str], ...] = ()

    def text(self, language: str) -> str:
        return i18n.translate(language, f"proxy.{self.key}", **dict(self.holes))


def say(key: str, **holes: object) -> Sentence:
    """The sentence ``proxy.<key>`` with ``holes``: ``say("starting", node="node1")``."""
    return Sentence(key, tuple((name, str(value)) for name, value in holes.items()))


def language_of(cookies: dict[str, str], accept_language: bytes | None) -> str:
    """The visitor's language, from its cookies and its Accept-Language header."""
    return i18n.choose(cookies.get(i18n.LANGUAGE_COOKIE), (accept_language or b"").decode("latin-1"))


def page(
    status: int, sentence: Sentence, language: str = i18n.DEFAULT_LANGUAGE, back: str = "", close: bool = False
) -> bytes:
    """A whole HTTP/1.1 response: the page of ``status`` saying ``sentence`` in ``language``, linking to ``back``.

    The waiting page (503) refreshes itself every RETRY_SECONDS and says so in ``Retry-After``.
    """
    title = i18n.translate(language, f"proxy.title.{status}" if status in REASONS else "proxy.title.other")
    refresh = f'<meta http-equiv="refresh" content="{RETRY_SECONDS}">' if status == 503 else ""
    back_text = i18n.translate(language, "proxy.back")
    link = f'<p><a href="{html.escape(back)}">{html.escape(back_text)}</a></p>' if back else ""
    body = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">{refresh}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(sentence.text(language))}</p>{link}</body></html>"
    ).encode()
    extra = f"Retry-After: {RETRY_SECONDS}\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Language: {language}\r\n"
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
