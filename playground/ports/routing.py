"""Which node port a port-link request is for, and what of its head is forwarded (pure functions).

A request names its target in one of two forms (docs/ports.md):

- host form: ``Host: <port>-<node>-<short id>.<PLAYGROUND_PORTS_DOMAIN>[:<port>]``, any path;
- path form: any other host, path ``/ports/<short id>/<node>/<port>[~<owner pass>]/<rest>``;
  ``/<rest>`` is what the node is asked for, and ``X-Forwarded-Prefix`` tells it the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from playground.ports.links import parse_port
from playground.sandboxes.models import COOKIE_PREFIX

TOKEN_PARAMETER = "__playground_token"  # the handoff's one-time query parameter (see playground.ports.handoff)

_NODE = r"[a-z][a-z0-9-]{0,62}?"
_SHORT_ID = r"[0-9a-f]{20}"
_HOST_LABEL = re.compile(rf"^(?P<port>[0-9]{{1,5}})-(?P<node>{_NODE})-(?P<short_id>{_SHORT_ID})$")
_PATH = re.compile(
    rf"^/ports/(?P<short_id>{_SHORT_ID})/(?P<node>[a-z][a-z0-9-]{{0,62}})/(?P<port>[^/?~]*)"
    r"(?:~(?P<owner_pass>[A-Za-z0-9_-]{1,64}))?(?P<rest>[/?].*)?$"
)

# Hop-by-hop headers (RFC 9110 7.6.1), and those the proxy sets itself: never copied through.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
_SET_BY_PROXY = frozenset({b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-prefix"})
_SPECIAL_REQUEST = HOP_BY_HOP | _SET_BY_PROXY | {b"host", b"cookie"}
# A response head's header lines the proxy may have to change (hop-by-hop, Set-Cookie): a head
# without any but Content-Length is passed on as the node sent it (see relayed_head).
_TOUCHED_RESPONSE = re.compile(
    rb"\n(?:connection|keep-alive|proxy-[a-z-]*|te|trailer|transfer-encoding|upgrade|set-cookie)[ \t]*:", re.I
)
_CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:", re.I)


@dataclass(frozen=True)
class Target:
    """A request's node port: ``path`` is what the node is asked for; ``prefix`` is "" in host form."""

    short_id: str
    node: str
    port: int | None  # None when the URL's port is not 1..65535 (answered 400)
    path: str
    prefix: str
    slash_missing: bool = False  # path form without the slash after the port (redirected to it)
    owner_pass: str = ""  # path form: the owner's pass after the port (``8080~<pass>``), if any

    @property
    def host_form(self) -> bool:
        return not self.prefix

    def at(self, path: str) -> Target:
        """The same node port asked for ``path`` (a request of a kept-alive connection routed as the last)."""
        return Target(self.short_id, self.node, self.port, path, self.prefix, False, self.owner_pass)

    def same_route(self, url: str) -> str | None:
        """What the node is asked for when a request for ``url`` on the same ``Host`` goes to this
        node port as :func:`route` would route it (None when it may not: route it afresh)."""
        if not self.prefix:
            return url if url.startswith("/") else "/"
        prefix = self.prefix
        if url.startswith(prefix) and url[len(prefix) : len(prefix) + 1] == "/":
            return url[len(prefix) :]
        return None


def split_host(host: str) -> str:
    """The host name of a ``Host`` header, lower case, without its port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def route(host: str, target: str, domain: str) -> Target | None:
    """The node port a request is for, from its ``Host`` and request target; None when it names none.

    Host form when the host name is ``<port>-<node>-<short id>.<domain>``; otherwise the path form.
    """
    name = split_host(host)
    suffix = "." + domain
    if name.endswith(suffix):
        match = _HOST_LABEL.match(name[: -len(suffix)])
        if match:
            path = target if target.startswith("/") else "/"
            return Target(match["short_id"], match["node"], parse_port(match["port"]), path, "")
    match = _PATH.match(target)
    if match is None:
        return None
    owner_pass = match["owner_pass"] or ""
    prefix = f"/ports/{match['short_id']}/{match['node']}/{match['port']}" + (f"~{owner_pass}" if owner_pass else "")
    rest = match["rest"] or ""
    missing = not rest.startswith("/")
    path = "/" + rest if missing else rest
    return Target(match["short_id"], match["node"], parse_port(match["port"]), path, prefix, missing, owner_pass)


def take_token(path: str) -> tuple[str, str | None]:
    """``path`` without the handoff's query parameter, and that parameter's value (None if absent)."""
    base, sep, query = path.partition("?")
    if not sep or TOKEN_PARAMETER not in query:
        return path, None
    pairs = parse_qsl(query, keep_blank_values=True)
    token = next((value for name, value in pairs if name == TOKEN_PARAMETER), None)
    rest = urlencode([(name, value) for name, value in pairs if name != TOKEN_PARAMETER])
    return (f"{base}?{rest}" if rest else base), token


def playground_cookie(name: str) -> bool:
    """True for Playground's own cookies (a session's key ``pg_<hex>``, the port links' ``pg_port``)."""
    return name.strip().lower().startswith(COOKIE_PREFIX)


def parse_cookies(header: bytes) -> dict[str, str]:
    """The name -> value pairs of a ``Cookie`` header (the first of repeated names)."""
    cookies: dict[str, str] = {}
    for part in header.decode("latin-1").split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def strip_cookies(header: bytes) -> bytes:
    """A ``Cookie`` header's value without Playground's own cookies (b"" when none is left)."""
    kept = [part.strip() for part in header.split(b";") if part.strip()]
    return b"; ".join(part for part in kept if not playground_cookie(part.partition(b"=")[0].decode("latin-1")))


def request_head(
    method: bytes,
    target: Target,
    headers: list[tuple[bytes, bytes]],
    client_address: bytes,
    scheme: bytes,
    framing: bytes,
) -> bytes:
    """The head sent to the node: hop-by-hop and Playground's cookies removed, X-Forwarded-* set.

    ``framing`` is the header lines (each ending CRLF) that say how the body follows:
    ``Content-Length``, ``Transfer-Encoding: chunked`` or the websocket upgrade's. Built as one
    list of pieces joined once.
    """
    parts = [method, b" ", target.path.encode("latin-1"), b" HTTP/1.1\r\n"]
    host = b""
    forwarded_for = b""
    for name, value in headers:
        lower = name.lower()
        if lower in _SPECIAL_REQUEST:
            if lower == b"host":
                host = value
            elif lower == b"x-forwarded-for":
                forwarded_for = value + b", "
            if lower != b"cookie" and lower != b"host":
                continue
            if lower == b"cookie":
                value = strip_cookies(value)
                if not value:
                    continue
        parts += (name, b": ", value, b"\r\n")
    parts += (b"X-Forwarded-For: ", forwarded_for, client_address, b"\r\nX-Forwarded-Proto: ", scheme, b"\r\n")
    if host:
        parts += (b"X-Forwarded-Host: ", host, b"\r\n")
    if target.prefix:
        parts += (b"X-Forwarded-Prefix: ", target.prefix.encode("latin-1"), b"\r\n")
    parts += (framing, b"\r\n")
    return b"".join(parts)


PATH_FORM_CSP = b"sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"


def kept_set_cookie(value: bytes, host_form: bool) -> bool:
    """Whether a node's ``Set-Cookie`` reaches the browser.

    Path form: never (its origin is shared by every session's links and the main site's name).
    Host form: unless it names a ``Domain`` (which would reach other hosts under the ports domain)
    or one of Playground's own cookie names.
    """
    if not host_form:
        return False
    name = value.partition(b"=")[0].decode("latin-1")
    attributes = [part.strip().lower() for part in value.split(b";")[1:]]
    return not playground_cookie(name) and not any(part.startswith(b"domain") for part in attributes)


def response_head(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    host_form: bool,
    framing: bytes,
) -> bytes:
    """The head sent to the visitor: hop-by-hop removed, cookies filtered, the path form sandboxed."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            continue
        if lower == b"set-cookie" and not kept_set_cookie(value, host_form):
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    if not host_form:
        lines.append(b"Content-Security-Policy: %s\r\n" % PATH_FORM_CSP)
    lines.append(framing)
    lines.append(b"\r\n")
    return b"".join(lines)


def head_end(data: bytes, start: int) -> int:
    """Where the head that begins at ``start`` in ``data`` ends: past its empty line (llhttp, as
    httptools builds it, takes CRLF line ends alone). ValueError when ``data`` holds no end of a head."""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise ValueError("a head without its end")
    return end + 4


def relayed_head(head: bytes, status: int, extra: bytes) -> bytes | None:
    """The node's ``head`` as the visitor gets it when nothing in it must change, with the header
    lines ``extra`` added; None when it must be rebuilt (:func:`split_head`, :func:`response_head`).

    Passed on as it is: an HTTP/1.1 final answer (not 204, whose Content-Length is dropped) whose
    body is framed by a Content-Length, with no hop-by-hop header and no Set-Cookie.
    """
    if (
        status == 204
        or not head.startswith(b"HTTP/1.1 ")
        or _TOUCHED_RESPONSE.search(head) is not None
        or _CONTENT_LENGTH.search(head) is None
    ):
        return None
    return head[:-2] + extra + b"\r\n" if extra else head


def split_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A response head's reason phrase and header fields (llhttp refuses folded lines)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    reason = parts[2] if len(parts) == 3 else b""
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip(b" \t")))
    return reason, headers
