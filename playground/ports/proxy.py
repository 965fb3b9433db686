"""The port proxy: visitors' HTTP/1.1 to nodes' ports, streaming both ways, websockets relayed.

One :class:`Visitor` per visitor connection parses every request head with httptools (llhttp),
routes it (:mod:`playground.ports.routing`), checks access (:mod:`playground.ports.access`) and
forwards it to the node over an :class:`Upstream` connection, kept for the next request when it
goes to the same node port. Bodies are never buffered whole: each chunk read is written on at
once, reading from one side pausing while the other side's write buffer is full. After a
``101 Switching Protocols`` the two connections relay bytes unparsed.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
from django.db import DatabaseError

from playground.metrics.instruments import PORT_ERRORS, PORT_REQUESTS
from playground.ports import handoff, pages
from playground.ports.access import Directory, SessionInfo, Verdict, decide
from playground.ports.routing import (
    PATH_FORM_CSP,
    TOKEN_PARAMETER,
    Target,
    head_end,
    parse_cookies,
    relayed_head,
    request_head,
    response_head,
    route,
    split_head,
    split_host,
    take_token,
)
from playground.sandboxes import agentclient
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.ports")

Back = Callable[[], str] | None  # the link back to the session on a page, worked out only if one is shown

HEAD_LIMIT = 64 * 1024  # bytes of a request's line and headers
BUFFER_LIMIT = 1 << 20  # body bytes held for a request not yet forwarded before reading pauses
WRITE_HIGH = 1 << 20  # a transport's write buffer above which the other side stops reading
CONNECT_TIMEOUT = 3.0  # nodes are on the host's own bridge: a live one answers within a millisecond
READY_PATH = "/ports/ready"  # answered 200 on any host but the host form's: the launcher's readiness check
IDLE_TIMEOUT = 75.0  # seconds a kept-alive visitor connection may wait between requests


@dataclass(frozen=True)
class ProxySettings:
    """What the proxy needs of the web tier's settings (playground.config.Config)."""

    domain: str
    scheme: str  # the public scheme of links (X-Forwarded-Proto, the handoff cookie's Secure)
    public_port: int
    ports_port: int
    site_port: int  # PLAYGROUND_PORT: the main site, for the path form's link back to the session
    cookie_seconds: int  # how long the handoff cookie lasts: the longest a session may live

    def path_form_site(self, host: str) -> str:
        """The main site's origin seen from a path-form request to ``host``.

        Reached directly (links name the proxy's own port), the main site is at PLAYGROUND_PORT of
        the same name; behind a front proxy (links name another port), at its scheme's default port.
        """
        name = split_host(host)
        if self.public_port == self.ports_port:
            return f"{self.scheme}://{name}:{self.site_port}"
        return f"{self.scheme}://{name}"


def tls_context() -> ssl.SSLContext:
    """TLS to nodes (the ``https`` port option): their certificates are self-signed, so unchecked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Small writes (a head, a websocket frame) leave at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(eq=False, slots=True)
class Exchange:
    """One request of a visitor and, once forwarded, its response."""

    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    upgrade: bool
    http11: bool
    body: list[bytes] = field(default_factory=list)  # read before the request was forwarded
    buffered: int = 0
    complete: bool = False  # the whole request (head and body) has been read
    sink: Upstream | None = None  # where body chunks go once forwarded
    chunked: bool = False
    length: int | None = None
    host: bytes = b""  # its Host header
    cookie: bytes = b""  # its Cookie headers, joined

    @property
    def replayable(self) -> bool:
        """Whether it can be sent again as it is: a complete GET or HEAD without a body."""
        return self.complete and self.method in (b"GET", b"HEAD") and not self.chunked and not self.length

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case)."""
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Memo:
    """How a visitor connection's last forwarded request was routed and let through: the next
    request with the same ``Host``, the same node port (its host name, or its path's prefix) and
    the same cookies is forwarded alike while the directory hands out the same ``info`` (the
    session as read at most CACHE_SECONDS ago), so a port unshared or a session ended is seen as
    soon as by a new connection."""

    host: bytes
    cookie: bytes
    info: SessionInfo | None
    target: Target
    verdict: Verdict


class Connection(asyncio.Protocol):
    """One side of the proxy: reading from it pauses while any reason to pause holds."""

    transport: asyncio.Transport | None
    pauses: set[str]

    def pause(self, reason: str) -> None:
        """Stop reading from this side for ``reason`` (until resume(reason))."""
        if not self.pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self.pauses.add(reason)

    def resume(self, reason: str) -> None:
        """Read again once no reason to pause is left."""
        if reason in self.pauses:
            self.pauses.discard(reason)
            if not self.pauses and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()


class Proxy:
    """The shared state of all connections: the settings and the session directory."""

    def __init__(self, settings: ProxySettings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self.tls = tls_context()

    def __call__(self) -> Visitor:
        return Visitor(self)


class Visitor(Connection):
    """A visitor's connection: requests parsed, each routed, checked and forwarded in turn."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.settings = proxy.settings
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.address_bytes = b""
        self.scheme_bytes = self.settings.scheme.encode()
        self.memo: Memo | None = None
        self.queue: collections.deque[Exchange] = collections.deque()
        self.loop = asyncio.get_running_loop()
        self.current: Exchange | None = None  # the request being answered
        self.idle_since = self.loop.time()
        self.idle_timer: asyncio.TimerHandle | None = None
        self.reading: Exchange | None = None  # the request being read
        self.upstream: Upstream | None = None  # the node connection of the last request
        self.tunnel: asyncio.Transport | None = None  # after a 101: raw bytes go there
        self.after_upgrade: list[bytes] = []  # bytes read after an upgrade request, before its answer
        self.pauses: set[str] = set()
        self.head_size = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.task: asyncio.Task[None] | None = None

    # -- the connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        no_delay(transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "unknown"
        self.address_bytes = self.address.encode()
        self.idle_timer = self.loop.call_later(IDLE_TIMEOUT, self.check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.upstream is not None:
            self.upstream.close()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.after_upgrade or (self.reading is not None and self.reading.upgrade and self.reading.complete):
            self.after_upgrade.append(data)  # for the node once it switches protocols (or never)
            if sum(map(len, self.after_upgrade)) > BUFFER_LIMIT:
                self.pause("upgrade")
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            tail = data[upgrade.args[0] :]
            if tail:
                self.after_upgrade.append(tail)
        except httptools.HttpParserError as exc:
            self.refuse_bad_request(exc)
            return
        if self.current is None and self.queue:
            self.next()  # once this read is parsed: a GET is then complete

    def eof_received(self) -> bool:
        return False  # the visitor is done: close (connection_lost closes the node's side after its buffer)

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause("visitor")

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume("visitor")

    def write(self, data: bytes) -> None:
        """Send to the visitor (nothing once the connection is closing: uvloop refuses writes then)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_all(self, parts: list[bytes]) -> None:
        """Send ``parts`` in one write call."""
        if self.transport is not None and not self.transport.is_closing():
            if len(parts) == 1:
                self.transport.write(parts[0])
            else:
                self.transport.writelines(parts)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def retry(
        self, exchange: Exchange, target: Target, key: tuple[str, int, bool], back: Back, verdict: Verdict
    ) -> None:
        """Send ``exchange`` again on a new connection: a kept-alive one to the node closed as it was sent."""
        self.upstream = None
        self.in_task(self.connect_then_send(exchange, target, key, back, verdict))

    def refuse_bad_request(self, exc: Exception) -> None:
        """Answer 400 (431 for a head too large) unless a response is under way, and close."""
        if self.current is None and not self.queue:
            too_large = self.head_size > HEAD_LIMIT
            sentence = pages.say("head_too_large") if too_large else pages.say("not_http", why=exc)
            self.write(pages.page(431 if too_large else 400, sentence, close=True))
        self.close()

    # -- httptools callbacks -------------------------------------------------------------------
    # No on_message_begin (a Python call less a request): on_headers_complete starts the next
    # head afresh. The head's size is checked as it is read.
    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > HEAD_LIMIT:
            raise ValueError("head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        if self.head_size > HEAD_LIMIT:
            raise ValueError("head too large")

    def on_headers_complete(self) -> None:
        parser = self.parser
        exchange = Exchange(
            method=parser.get_method(),
            url=self.url,
            headers=self.headers,
            keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade(),
            http11=parser.get_http_version() == "1.1",
        )
        encoding = length = None
        cookies = []
        for name, value in self.headers:  # one pass for the few headers the proxy reads
            lower = name.lower()
            if lower == b"host":
                exchange.host = exchange.host or value
            elif lower == b"cookie":
                cookies.append(value)
            elif lower == b"transfer-encoding":
                encoding = encoding if encoding is not None else value
            elif lower == b"content-length":
                length = length if length is not None else value
        exchange.cookie = cookies[0] if len(cookies) == 1 else b"; ".join(cookies)
        self.url, self.headers, self.head_size = b"", [], 0
        exchange.chunked = encoding is not None and encoding.strip().lower().endswith(b"chunked")
        exchange.length = int(length) if length is not None and not exchange.chunked else None
        if self.current is not None or self.queue:
            self.pause("pipelined")  # one request at a time: the next waits in the kernel's buffer
        self.reading = exchange
        self.queue.append(exchange)

    def on_body(self, body: bytes) -> None:
        exchange = self.reading
        assert exchange is not None
        if exchange.sink is not None:
            exchange.sink.send_body(body, exchange.chunked)
            return
        exchange.body.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > BUFFER_LIMIT:
            self.pause("buffer")

    def on_message_complete(self) -> None:
        exchange = self.reading
        assert exchange is not None
        exchange.complete = True
        if exchange.sink is not None:
            exchange.sink.end_body(exchange.chunked)

    # -- serving requests in turn --------------------------------------------------------------
    # One request at a time: next() takes the oldest waiting one; it is answered synchronously
    # when the session is in the directory's cache and a connection to its node port is open
    # (the common case on a kept-alive connection), through a task otherwise (a database lookup,
    # a connect); finished() ends it and takes the next.
    def next(self) -> None:
        """Start answering the oldest waiting request, unless one is under way."""
        if self.current is not None or not self.queue or self.transport is None or self.transport.is_closing():
            return
        exchange = self.current = self.queue.popleft()
        if not self.queue:
            self.resume("pipelined")
        try:
            self.start(exchange)
        except Exception:
            log.exception("port proxy: a request failed")
            self.close()

    def finished(self, keep: bool) -> None:
        """The current request is answered; read the next one if ``keep``, else close."""
        self.current = None
        self.idle_since = self.loop.time()
        self.resume("buffer")
        if not keep:
            self.close()
        elif self.queue:
            self.loop.call_soon(self.next)

    def check_idle(self) -> None:
        """Close a kept-alive connection that has waited IDLE_TIMEOUT for its next request."""
        if self.transport is None or self.transport.is_closing():
            return
        waited = self.loop.time() - self.idle_since
        if self.current is None and not self.queue and waited >= IDLE_TIMEOUT:
            self.close()
            return
        delay = IDLE_TIMEOUT - waited if self.current is None and waited > 0 else IDLE_TIMEOUT
        self.idle_timer = self.loop.call_later(delay, self.check_idle)

    def in_task(self, work: Coroutine[Any, Any, None]) -> None:
        """Go on with the current request in a task (cancelled if the visitor goes)."""
        self.task = self.loop.create_task(work)

    def start(self, exchange: Exchange) -> None:
        """Route one request and answer it: a page, the handoff, or the node's response."""
        url = exchange.url.decode("latin-1")
        if url != READY_PATH:  # the launcher's readiness checks are not visitors' requests
            PORT_REQUESTS.inc()
        memo = self.memo
        if memo is not None and exchange.host == memo.host and exchange.cookie == memo.cookie:
            path = memo.target.same_route(url)
            if path is not None and (not memo.target.host_form or TOKEN_PARAMETER not in path):
                found, info = self.proxy.directory.cached(memo.target.short_id)
                if found and info is memo.info:
                    host = exchange.host.decode("latin-1")
                    return self.forward(exchange, host, memo.target.at(path), info, memo.verdict)
        self.memo = None
        host = exchange.host.decode("latin-1")
        target = route(host, url, self.settings.domain)
        if target is None and url == READY_PATH:
            return self.reply(exchange, 200, pages.say("running"))
        if target is None:
            return self.reply(exchange, 404, pages.say("no_link", domain=self.settings.domain))
        if target.port is None:
            return self.reply(exchange, 400, pages.say("bad_port"))
        if target.slash_missing:  # relative links of the node's pages need the slash
            self.write(pages.redirect(target.prefix + target.path))
            return self.finished(exchange.complete and exchange.keep_alive)
        found, info = self.proxy.directory.cached(target.short_id)
        if found:
            self.decide(exchange, host, target, info)
        else:
            self.in_task(self.look_up_then_decide(exchange, host, target))

    async def look_up_then_decide(self, exchange: Exchange, host: str, target: Target) -> None:
        try:
            try:
                info = await self.proxy.directory.lookup(target.short_id)
            except DatabaseError as exc:
                log.warning("port proxy: cannot read session %s from the database: %s", target.short_id, exc)
                return self.reply(exchange, 503, pages.say("no_database"))
            self.decide(exchange, host, target, info)
        except Exception:
            log.exception("port proxy: a request failed")
            self.close()

    def decide(self, exchange: Exchange, host: str, target: Target, info: SessionInfo | None) -> None:
        """Answer a routed request once its session is known."""
        assert target.port is not None
        if target.host_form:
            clean, token = take_token(target.path)
            if token is not None:
                return self.hand_over(exchange, split_host(host), clean, token, info)
        verdict = decide(info, target.node, target.port, lambda: self.ownership(exchange, host, target, info)[0])
        if verdict.status:
            back = functools.partial(self.back_link, exchange, host, target, info)
            assert verdict.sentence is not None
            return self.reply(exchange, verdict.status, verdict.sentence, back)
        self.memo = Memo(exchange.host, exchange.cookie, info, target, verdict)
        self.forward(exchange, host, target, info, verdict)

    def forward(
        self, exchange: Exchange, host: str, target: Target, info: SessionInfo | None, verdict: Verdict
    ) -> None:
        """Send a request let through (``verdict``) to its node port, or the owner to the URL with the pass."""
        assert target.port is not None
        back = functools.partial(self.back_link, exchange, host, target, info)
        if (
            not target.host_form
            and not target.owner_pass
            and not verdict.shared
            and exchange.method == b"GET"
            and not exchange.upgrade
        ):
            # The owner, by the session's cookie, loading a page: what the page loads will carry
            # no cookie (its origin is opaque), so the owner's pass goes into the path for it.
            assert info is not None
            owner_pass = handoff.path_pass(info.id.hex, target.node, target.port)
            self.write(pages.redirect(f"{target.prefix}~{owner_pass}{target.path}"))
            return self.finished(exchange.complete and exchange.keep_alive)
        # A node of another sandbox host is named by its agent too: addresses repeat across hosts' bridges.
        address = verdict.address if verdict.via is None else f"{verdict.via}/{verdict.address}"
        key = (address, target.port, verdict.https)
        upstream = self.upstream
        if upstream is not None and upstream.key == key and upstream.reusable:
            self.send(exchange, target, upstream, back)
        else:
            self.in_task(self.connect_then_send(exchange, target, key, back, verdict))

    def back_link(self, exchange: Exchange, host: str, target: Target, info: SessionInfo | None) -> str:
        """The link back to the session on the proxy's pages: for its owner only ("" otherwise)."""
        owner, site = self.ownership(exchange, host, target, info)
        return f"{site}/s/{info.id}/" if owner and site and info is not None else ""

    def ownership(self, exchange: Exchange, host: str, target: Target, info: SessionInfo | None) -> tuple[bool, str]:
        """Whether the visitor owns the session, and the main site's origin to link back to."""
        if info is None:
            return False, ""
        cookies = parse_cookies(exchange.cookie)
        if not target.host_form:
            owner = info.owned_by(cookies.get(f"pg_{info.id.hex}")) or (
                target.port is not None
                and handoff.check_path_pass(target.owner_pass, info.id.hex, target.node, target.port)
            )
            return owner, self.settings.path_form_site(host)
        proof = handoff.check_cookie(cookies.get(handoff.COOKIE_NAME), self.settings.cookie_seconds)
        if proof is None or proof["s"] != info.id.hex:
            return False, ""
        return True, proof["b"]

    def answer(self, exchange: Exchange, status: int, sentence: pages.Sentence, back: Back = None) -> bool:
        """Send the page of ``status`` in the visitor's language; the connection goes on only if the
        whole request was read."""
        keep = exchange.complete and exchange.keep_alive and not exchange.upgrade
        if status >= 400:
            PORT_ERRORS.labels(str(status)).inc()
        language = pages.language_of(parse_cookies(exchange.cookie), exchange.header(b"accept-language"))
        self.write(pages.page(status, sentence, language, back() if back else "", close=not keep))
        return keep

    def reply(self, exchange: Exchange, status: int, sentence: pages.Sentence, back: Back = None) -> None:
        """Answer the current request with the page of ``status``, and go on to the next."""
        self.finished(self.answer(exchange, status, sentence, back))

    def hand_over(self, exchange: Exchange, host: str, clean: str, token: str, info: SessionInfo | None) -> None:
        """The handoff: a genuine token becomes the owner cookie of this host, then the clean URL."""
        proof = handoff.check_token(token, host)
        if proof is None or info is None or proof["s"] != info.id.hex:
            return self.reply(exchange, 403, pages.say("pass_expired"))
        secure = "; Secure" if self.settings.scheme == "https" else ""
        cookie = (
            f"{handoff.COOKIE_NAME}={handoff.make_cookie(proof['s'], proof['b'])}; Path=/; "
            f"Max-Age={self.settings.cookie_seconds}; HttpOnly; SameSite=Lax{secure}"
        )
        self.write(pages.redirect(clean, cookie))
        self.finished(exchange.complete and exchange.keep_alive)

    async def connect_then_send(
        self, exchange: Exchange, target: Target, key: tuple[str, int, bool], back: Back, verdict: Verdict
    ) -> None:
        try:
            upstream = await self.connect(exchange, target, key, back, verdict)
            if upstream is None:
                self.finished(exchange.complete and exchange.keep_alive and not exchange.upgrade)
            else:
                self.send(exchange, target, upstream, back)
        except Exception:
            log.exception("port proxy: a request failed")
            self.close()

    def send(self, exchange: Exchange, target: Target, upstream: Upstream, back: Back) -> None:
        """Send the request to the node; its response goes to the visitor as it comes (Upstream)."""
        if exchange.upgrade:
            upgrade = exchange.header(b"upgrade") or b"websocket"
            framing = b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade
        elif exchange.chunked:
            framing = b"Transfer-Encoding: chunked\r\n"
        elif exchange.length is not None:
            framing = b"Content-Length: %d\r\n" % exchange.length
        else:
            framing = b""
        upstream.begin(exchange, target, back)
        upstream.write(
            request_head(exchange.method, target, exchange.headers, self.address_bytes, self.scheme_bytes, framing)
        )
        for chunk in exchange.body:
            upstream.send_body(chunk, exchange.chunked)
        exchange.body.clear()
        exchange.sink = upstream
        self.resume("buffer")
        if exchange.complete:
            upstream.end_body(exchange.chunked)

    async def connect(
        self, exchange: Exchange, target: Target, key: tuple[str, int, bool], back: Back, verdict: Verdict
    ) -> Upstream | None:
        """A new connection to the node's port (through its host's agent, for a node of another
        sandbox host); None after answering the waiting page (nothing listens) or the 502 page."""
        assert target.port is not None
        https = key[2]
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        try:
            if verdict.via is None:
                _, upstream = await asyncio.wait_for(
                    self.loop.create_connection(
                        lambda: Upstream(self, key, verdict),
                        verdict.address,
                        target.port,
                        ssl=self.proxy.tls if https else None,
                        server_hostname=target.node if https else None,
                    ),
                    CONNECT_TIMEOUT,
                )
            else:
                upstream = await self.connect_through_agent(verdict, target, key)
        except ConnectionRefusedError:
            sentence = pages.say("not_listening", port=target.port, node=target.node, seconds=pages.RETRY_SECONDS)
            self.answer(exchange, 503, sentence, back)
            return None
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            await self.unreachable(exchange, target, back, str(exc) or "no answer")
            return None
        self.upstream = upstream
        return upstream

    async def connect_through_agent(self, verdict: Verdict, target: Target, key: tuple[str, int, bool]) -> Upstream:
        """The node's port through the agent of its sandbox host (``connect``, sandbox/agent/relay.py),
        with TLS to the node inside when it asks for https. ConnectionRefusedError when nothing
        listens, OSError when the agent or the node cannot be reached."""
        assert verdict.via is not None and target.port is not None
        try:
            agent = agentclient.remote(verdict.via)
            transport, relayed = await agent.connect_port(
                verdict.sandbox_id, target.port, lambda: Upstream(self, key, verdict)
            )
        except AgentError as exc:
            if exc.code == "not_listening":
                raise ConnectionRefusedError(exc.message) from None
            raise OSError(exc.message) from None
        upstream = cast(Upstream, relayed)
        if key[2]:  # https: TLS to the node, inside the agent's TLS
            secured = await asyncio.wait_for(
                self.loop.start_tls(transport, upstream, self.proxy.tls, server_hostname=target.node), CONNECT_TIMEOUT
            )
            if secured is None:
                raise OSError("the node closed the connection during its TLS handshake")
            upstream.transport = cast(asyncio.Transport, secured)
        return upstream

    async def unreachable(self, exchange: Exchange, target: Target, back: Back, why: str) -> None:
        """The node did not answer: the session's end or the node's removal (seen afresh) says why, else 502."""
        assert target.port is not None
        self.proxy.directory.forget(target.short_id)
        info = await self.proxy.directory.lookup(target.short_id)
        verdict = decide(info, target.node, target.port, lambda: True)
        if verdict.sentence is not None:
            self.answer(exchange, verdict.status, verdict.sentence, back)
        else:
            self.answer(exchange, 502, pages.say("unreachable", port=target.port, node=target.node, why=why), back)


class HeadTooLarge(ValueError):
    """A node's answer has a head larger than HEAD_LIMIT."""


class Upstream(Connection):
    """A connection to a node's port: requests written to it, responses parsed and passed on."""

    def __init__(self, visitor: Visitor, key: tuple[str, int, bool], verdict: Verdict) -> None:
        self.visitor = visitor
        self.key = key
        self.verdict = verdict  # what the connection was made for (a retry makes another alike)
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.active = False  # an exchange is under way
        self.host_form = True
        self.back: Back = None
        self.received: list[bytes] = []  # what the node sent of the answer's head so far
        self.received_size = 0
        self.head_start = 0  # where in them the head begins (past a 1xx's)
        self.out: list[bytes] = []  # for the visitor, written in one call per read (flush)
        self.head_sent = False  # the visitor has the response's head
        self.chunked = False  # the response is re-chunked to the visitor
        self.until_close = False  # the response's body ends when the node closes
        self.keep_visitor = False  # the visitor's connection goes on after this response
        self.switching = False  # the node answered 101
        self.closed = False
        self.reusable = False
        self.pauses: set[str] = set()
        self.target: Target | None = None
        self.served = 0  # exchanges begun on this connection
        self.reused = False  # the current exchange is not the connection's first
        self.heard = False  # the node has sent something of the current answer

    @property
    def busy(self) -> bool:
        return self.active

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        no_delay(transport)

    def begin(self, exchange: Exchange, target: Target, back: Back) -> None:
        """Start an exchange on this connection; finish() tells the visitor when it is over."""
        self.exchange, self.target, self.host_form, self.back = exchange, target, target.host_form, back
        self.reused, self.heard = self.served > 0, False
        self.served += 1
        self.received, self.received_size, self.head_start, self.head_sent = [], 0, 0, False
        self.chunked = self.until_close = self.reusable = self.keep_visitor = self.switching = False
        self.active = True

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def send_body(self, chunk: bytes, chunked: bool) -> None:
        """A chunk of the request's body, re-framed if the request was chunked."""
        if self.transport is None or self.transport.is_closing():
            return
        if chunked:
            self.transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            self.transport.write(chunk)

    def end_body(self, chunked: bool) -> None:
        if chunked and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")

    def pause_writing(self) -> None:
        self.visitor.pause("upstream")

    def resume_writing(self) -> None:
        self.visitor.resume("upstream")

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def emit(self, data: bytes) -> None:
        """For the visitor, once this read of the node's answer is parsed (flush)."""
        self.out.append(data)

    def flush(self) -> None:
        """Write what is for the visitor, in one call."""
        if self.out:
            self.visitor.write_all(self.out)
            self.out = []

    def finish(self, keep: bool) -> None:
        """The exchange is over: tell the visitor's loop whether its connection goes on."""
        self.flush()
        if self.active:
            self.active = False
            self.visitor.finished(keep)

    # -- from the node -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.visitor.tunnel is not None:
            self.visitor.write(data)
            return
        self.heard = True
        if not self.busy:  # nothing asked: the node speaks out of turn
            self.close()
            return
        waiting = not self.head_sent
        if waiting:
            self.received.append(data)
            self.received_size += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.flush()
            self.start_tunnel(data[upgrade.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self.flush()
            if isinstance(exc.__context__, HeadTooLarge):
                self.fail_head_too_large()
            elif self.busy:
                self.fail(pages.say("answer_not_http", port=self.key[1], why=exc))
            else:  # bytes after its answer that nobody asked for
                self.close()
            return
        self.flush()
        if waiting and not self.head_sent and self.received_size - self.head_start > HEAD_LIMIT:
            self.fail_head_too_large()

    def fail_head_too_large(self) -> None:
        self.fail(pages.say("answer_head_too_large", port=self.key[1]))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        visitor = self.visitor
        visitor.resume("upstream")  # its full write buffer, which paused the visitor, is gone
        if visitor.tunnel is not None:
            visitor.close()
            return
        if not self.busy:
            return
        if self.until_close:
            self.finish(False)
            return
        exchange, target = self.exchange, self.target
        if self.reused and not self.heard and exchange is not None and target is not None and exchange.replayable:
            self.active = False  # the node closed a kept-alive connection as the request went: once more, anew
            self.visitor.retry(exchange, target, self.key, self.back, self.verdict)
            return
        self.fail(pages.say("answer_cut", port=self.key[1]))

    def fail(self, sentence: pages.Sentence) -> None:
        """The node broke off: the 502 page if the visitor has nothing of the response yet, else cut."""
        self.flush()
        self.close()
        if not self.head_sent and self.exchange is not None:
            self.visitor.answer(self.exchange, 502, sentence, self.back)
            self.finish(False)
        else:
            self.visitor.close()
            self.finish(False)

    # The answer's head is read from the bytes received (httptools calls back no header, which
    # saves a Python call per header), and passed on as it is when nothing in it must change.
    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or not self.busy:
            raise ValueError("an answer nobody asked for")
        status = self.parser.get_status_code()
        data = self.received[0] if len(self.received) == 1 else b"".join(self.received)
        end = head_end(data, self.head_start)
        if end - self.head_start > HEAD_LIMIT:
            raise HeadTooLarge()
        head = data[self.head_start : end]
        if 100 <= status < 200:
            self.received, self.head_start = [data], end  # the final answer's head follows
            self.interim(status, head)
            return
        self.received, self.received_size, self.head_start = [], 0, 0
        self.keep_visitor = exchange.keep_alive and exchange.http11 and not exchange.upgrade
        if exchange.method != b"HEAD" or status in (204, 304):
            extra = b"" if self.host_form else b"Content-Security-Policy: %s\r\n" % PATH_FORM_CSP
            relayed = relayed_head(head, status, extra if self.keep_visitor else extra + b"Connection: close\r\n")
            if relayed is not None:  # framed by its Content-Length, kept as the node sent it
                self.emit(relayed)
                self.head_sent = True
                return
        self.rebuild_head(exchange, status, head)

    def rebuild_head(self, exchange: Exchange, status: int, head: bytes) -> None:
        """Pass on a final answer's head with what must change changed: hop-by-hop headers
        dropped, the body's framing set, cookies filtered, the path form sandboxed."""
        reason, headers = split_head(head)
        reason = reason or b"-"
        length = next((v for k, v in headers if k.lower() == b"content-length"), None)
        encoding = next((v for k, v in headers if k.lower() == b"transfer-encoding"), b"")
        if status in (204, 304) or exchange.method == b"HEAD":
            framing = b"Content-Length: %s\r\n" % length if length is not None and status != 204 else b""
        elif encoding.strip().lower().endswith(b"chunked"):
            self.chunked = exchange.http11  # else the body goes plain and the connection closes after
            framing = b"Transfer-Encoding: chunked\r\n" if self.chunked else b""
        elif length is not None:
            framing = b"Content-Length: %s\r\n" % length
        else:
            self.until_close = True
            framing = b""
        self.keep_visitor = exchange.keep_alive and exchange.http11 and not exchange.upgrade
        self.keep_visitor = self.keep_visitor and not self.until_close and (self.chunked or not encoding)
        if not self.keep_visitor:
            framing += b"Connection: close\r\n"
        self.emit(response_head(status, reason, headers, self.host_form, framing))
        self.head_sent = True
        if exchange.method == b"HEAD" and status not in (204, 304):
            # httptools cannot be told that a HEAD's answer has no body: the connection goes
            self.close()
            self.finish(self.keep_visitor and exchange.complete)

    def interim(self, status: int, head: bytes) -> None:
        """A 1xx: passed on (100 Continue: the final answer follows), or the 101 that starts a tunnel."""
        reason, headers = split_head(head)
        reason = reason or b"-"
        framing = b""
        if status == 101:
            if self.exchange is None or not self.exchange.upgrade:
                raise ValueError("101 Switching Protocols to a request that asked for no upgrade")
            upgrade = next((v for k, v in headers if k.lower() == b"upgrade"), b"websocket")
            framing = b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade
            self.switching = True
        self.emit(response_head(status, reason, headers, self.host_form, framing))

    def on_body(self, body: bytes) -> None:
        if self.chunked:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if not self.head_sent or self.exchange is None:
            return  # an interim answer, or the 101 (the tunnel starts in data_received)
        if self.chunked:
            self.out.append(b"0\r\n\r\n")
        self.reusable = self.parser.should_keep_alive() and not self.closed
        self.finish(self.keep_visitor and self.exchange.complete)

    def start_tunnel(self, tail: bytes) -> None:
        """After the node's 101: relay raw bytes both ways, starting with what each side already sent."""
        visitor = self.visitor
        exchange = self.exchange
        if exchange is None or not exchange.upgrade or not self.switching:
            self.fail(pages.say("answer_switched", port=self.key[1]))
            return
        self.head_sent = True
        self.received = []
        assert self.transport is not None
        visitor.tunnel = self.transport
        if tail:
            visitor.write(tail)
        for chunk in visitor.after_upgrade:
            self.transport.write(chunk)
        visitor.after_upgrade.clear()
        self.reusable = False
        visitor.resume("pipelined")
        visitor.resume("upgrade")
