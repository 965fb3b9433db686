"""The port proxy (playground.ports.proxy) in-process against small upstream servers on loopback:
routing, access, the handoff, header rewriting, keep-alive, streaming, websockets, and its pages."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import pytest
import uvloop
import websockets
from django.db import OperationalError

from playground import i18n
from playground.ports import handoff, pages
from playground.ports.access import Node, SessionInfo
from playground.ports.proxy import Proxy, ProxySettings
from playground.sandboxes.models import EndReason, Session

KEY = "the-owners-key"
SESSION_ID = uuid.UUID("0123456789abcdef0123456789abcdef")
SHORT_ID = SESSION_ID.hex[:20]
SETTINGS = ProxySettings(
    domain="localhost", scheme="http", public_port=8001, ports_port=8001, site_port=8000, cookie_seconds=3600
)


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every test on both loops: the proxy runs on uvloop, whose transports differ from asyncio's."""
    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


@pytest.fixture(autouse=True, params=["kept", "looked up"])
def directory_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test with the session kept in the directory's cache (answered without a task) and not."""
    monkeypatch.setattr(Sessions, "kept", request.param == "kept")


class Sessions:
    """A directory of one session whose node1 is at 127.0.0.1 (the tests change it as they go)."""

    kept = True  # whether the proxy finds it in the directory's cache (see the fixture below)

    def __init__(self) -> None:
        self.info: SessionInfo | None = SessionInfo(
            SESSION_ID, Session.hash_key(KEY), True, "", {"node1": Node("running", "127.0.0.1", {})}
        )
        self.lookups = 0
        self.forgotten = 0

    def cached(self, short_id: str) -> tuple[bool, SessionInfo | None]:
        if not Sessions.kept:
            return False, None  # every request looks the session up: the proxy's task path
        self.lookups += 1
        return True, (self.info if short_id == SHORT_ID else None)

    def forget(self, short_id: str) -> None:
        self.forgotten += 1

    async def lookup(self, short_id: str) -> SessionInfo | None:
        self.lookups += 1
        return self.info if short_id == SHORT_ID else None

    def set(self, **changes: object) -> None:
        assert self.info is not None
        self.info = SessionInfo(**{**vars(self.info), **changes})  # type: ignore[arg-type]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)


class Reader:
    """Reads HTTP/1.1 responses off one client connection."""

    def __init__(self, reader: asyncio.StreamReader, head_only: bool = False) -> None:
        self.reader = reader
        self.head_only = head_only
        self.done: list[Response] = []
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.leftover = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode().lower(), value.decode()))

    def on_headers_complete(self) -> None:
        if self.head_only:
            self.finish()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if not self.head_only:
            self.finish()

    def finish(self) -> None:
        self.done.append(Response(self.parser.get_status_code(), dict(self.headers), self.body, self.headers))
        self.headers, self.body = [], b""

    async def response(self) -> Response:
        while not self.done:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                if self.headers or self.body or self.parser.get_status_code():
                    self.finish()  # a body that ends at the close
                    break
                raise ConnectionError("the proxy closed the connection")
            with contextlib.suppress(httptools.HttpParserUpgrade):
                self.parser.feed_data(data)
        return self.done.pop(0)


@contextlib.asynccontextmanager
async def running_proxy(sessions: Sessions, settings: ProxySettings = SETTINGS) -> AsyncIterator[int]:
    """The proxy on a free loopback port; its port."""
    server = await asyncio.get_running_loop().create_server(Proxy(settings, sessions), "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[int]:
    """A node port on loopback served by ``handler``; its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    """One request off an upstream connection: its target, headers (lower-case names) and body."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    target = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return target, headers, body


async def echo_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request with its target, its headers and its body, keep-alive."""
    while (request := await read_request(reader)) is not None:
        target, headers, body = request
        text = f"{target}\n" + "".join(f"{k}: {v}\n" for k, v in sorted(headers.items()))
        payload = text.encode() + b"\n" + body
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: app=1\r\n"
            b"Set-Cookie: pg_x=1\r\nSet-Cookie: wide=1; Domain=localhost\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        await writer.drain()
    writer.close()


async def get(
    port: int, path: str, host: str = "127.0.0.1", headers: str = "", body: bytes = b"", method: str = "GET"
) -> Response:
    """One request on a new connection to the proxy."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}{length}\r\n".encode() + body)
    try:
        return await Reader(reader, head_only=method == "HEAD").response()
    finally:
        writer.close()


def path_of(port: int, rest: str = "/", owned: bool = True) -> str:
    """The path-form URL of node1's ``port``, with the owner's pass (as open_url gives it) if ``owned``."""
    owner_pass = f"~{handoff.path_pass(SESSION_ID.hex, 'node1', port)}" if owned else ""
    return f"/ports/{SHORT_ID}/node1/{port}{owner_pass}{rest}"


def host_of(port: int, proxy: int) -> str:
    return f"{port}-node1-{SHORT_ID}.localhost:{proxy}"


UPGRADE = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
OWNER = f"Cookie: theme=dark; pg_{SESSION_ID.hex}={KEY}; other=2\r\n"


async def test_the_owner_reaches_a_node_port_by_its_path_and_the_prefix_is_stripped_and_told() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node, "/app/x?y=1"), headers=OWNER)
    assert response.status == 200, response.body
    lines = response.body.decode().splitlines()
    assert lines[0] == "/app/x?y=1"
    assert f"x-forwarded-prefix: {path_of(node, '')}" in lines
    assert "x-forwarded-for: 127.0.0.1" in lines
    assert "x-forwarded-proto: http" in lines


async def test_playgrounds_cookies_are_removed_from_what_the_node_gets_and_the_others_kept() -> None:
    cookies = f"Cookie: theme=dark; pg_{SESSION_ID.hex}={KEY}; pg_port=abc; other=2\r\n"
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=cookies)
    assert "cookie: theme=dark; other=2" in response.body.decode().splitlines()
    assert KEY not in response.body.decode() and "pg_" not in response.body.decode()


async def test_the_path_form_is_sandboxed_and_gets_no_cookies_from_the_node() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER)
    assert response.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert "set-cookie" not in response.headers


async def test_a_path_without_the_slash_after_the_port_is_redirected_to_it() -> None:
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, f"/ports/{SHORT_ID}/node1/8080?a=1", headers=OWNER)
    assert response.status == 302
    assert response.headers["location"] == f"/ports/{SHORT_ID}/node1/8080/?a=1"


@pytest.mark.parametrize("port", ["0", "70000", "junk", "-1", "99999999"])
async def test_a_bad_port_gets_400_with_a_sentence(port: str) -> None:
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, f"/ports/{SHORT_ID}/node1/{port}/", headers=OWNER)
    assert response.status == 400
    assert b"use a port from 1 to 65535" in response.body


@pytest.mark.parametrize(
    ("path", "sentence"),
    [
        ("/", b"no port link"),
        (f"/ports/{'f' * 20}/node1/80/", b"no such session"),
        (f"/ports/{SHORT_ID}/node9/80/", b"no node named node9"),
        ("/ports/not-a-session/node1/80/", b"no port link"),
    ],
)
async def test_an_unknown_session_or_node_gets_the_404_page(path: str, sentence: bytes) -> None:
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, path, headers=OWNER)
    assert response.status == 404
    assert sentence in response.body and response.headers["content-type"].startswith("text/html")


async def test_without_the_owners_cookie_an_unshared_port_gets_403_and_a_shared_one_opens() -> None:
    sessions = Sessions()
    async with upstream(echo_server) as node, running_proxy(sessions) as proxy:
        assert (await get(proxy, path_of(node, owned=False))).status == 403
        stranger = await get(proxy, path_of(node, owned=False), headers=f"Cookie: pg_{SESSION_ID.hex}=wrong\r\n")
        assert stranger.status == 403 and b"not shared" in stranger.body
        sessions.set(nodes={"node1": Node("running", "127.0.0.1", {str(node): {"shared": True}})})
        assert (await get(proxy, path_of(node, owned=False))).status == 200


async def test_the_owners_get_by_the_sessions_cookie_alone_is_sent_to_the_url_with_the_pass() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        navigation = await get(proxy, path_of(node, "/a?b=1", owned=False), headers=OWNER)
        upload = await get(proxy, path_of(node, "/a", owned=False), headers=OWNER, method="POST", body=b"x")
        websocket = await get(proxy, path_of(node, "/ws", owned=False), headers=OWNER + UPGRADE)
    assert navigation.status == 302
    assert navigation.headers["location"] == path_of(node, "/a?b=1")
    assert upload.status == 200  # not a page the browser loads: the cookie is enough
    assert websocket.status == 200  # passed on (the echo server does not upgrade): never redirected


async def test_the_owners_pass_in_the_path_opens_that_port_alone_without_a_cookie() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        owner_pass = handoff.path_pass(SESSION_ID.hex, "node1", node)
        opened = await get(proxy, path_of(node, f"~{owner_pass}/img.png", owned=False))
        forged = owner_pass[:-1] + ("y" if owner_pass.endswith("x") else "x")
        wrong = await get(proxy, path_of(node, f"~{forged}/img.png", owned=False))
        other_port = await get(proxy, f"/ports/{SHORT_ID}/node1/{node + 1}~{owner_pass}/")
    assert opened.status == 200
    lines = opened.body.decode().splitlines()
    assert lines[0] == "/img.png"
    assert f"x-forwarded-prefix: /ports/{SHORT_ID}/node1/{node}~{owner_pass}" in lines
    assert (wrong.status, other_port.status) == (403, 403)


async def test_an_ended_session_gets_410_with_a_sentence_even_for_its_owner() -> None:
    sessions = Sessions()
    sessions.set(active=False, ended_reason="expired")
    async with running_proxy(sessions) as proxy:
        response = await get(proxy, path_of(8080), headers=OWNER)
    assert response.status == 410
    assert b"This session has ended (its time ran out)" in response.body


async def test_nothing_listening_gets_the_waiting_page_that_retries_by_itself() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(free), headers=OWNER)
    assert response.status == 503
    assert response.headers["retry-after"] == "2"
    assert b'http-equiv="refresh" content="2"' in response.body
    assert f'href="http://127.0.0.1:8000/s/{SESSION_ID}/"'.encode() in response.body


async def test_the_waiting_page_speaks_korean_to_a_korean_browser_and_to_the_switchs_choice() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    korean = "노드 node1"  # proxy.not_listening and proxy.starting name the node in Korean word order
    async with running_proxy(Sessions()) as proxy:
        by_browser = await get(proxy, path_of(free), headers=OWNER + "Accept-Language: ko-KR,ko;q=0.9,en;q=0.8\r\n")
        by_switch = await get(proxy, path_of(free), headers=OWNER + f"Cookie: {i18n.LANGUAGE_COOKIE}=ko\r\n")
        switched_back = await get(
            proxy, path_of(free), headers=OWNER + f"Accept-Language: ko\r\nCookie: {i18n.LANGUAGE_COOKIE}=en\r\n"
        )
    for response in (by_browser, by_switch):
        page = response.body.decode()
        assert response.status == 503 and response.headers["content-language"] == "ko"
        assert '<html lang="ko">' in page and i18n.translate("ko", "proxy.back") in page
        assert f"{free}" in page and "다시 시도합니다" in page, page
    assert b"Nothing listens on port" in switched_back.body and switched_back.headers["content-language"] == "en"
    assert korean not in switched_back.body.decode()


def test_every_status_and_end_reason_the_pages_name_has_its_sentence_in_each_language() -> None:
    for language in i18n.LANGUAGES:
        sentences = i18n.catalogue(language)
        wanted = [f"proxy.title.{status}" for status in pages.REASONS]
        wanted += [f"proxy.ended.{reason}" for reason in EndReason.values]
        assert [key for key in wanted if key not in sentences] == [], language


async def test_a_database_that_does_not_answer_gets_the_waiting_page(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: Sessions, short_id: str) -> SessionInfo | None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(Sessions, "kept", False)
    monkeypatch.setattr(Sessions, "lookup", broken)
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(8080), headers=OWNER)
    assert response.status == 503 and b"cannot read its database" in response.body


async def test_a_node_that_resets_the_connection_gets_the_502_page() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()

    async with upstream(reset) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER)
    assert response.status == 502
    assert b"closed the connection before its answer was complete" in response.body


async def test_a_node_that_switches_protocols_unasked_gets_the_502_page() -> None:
    async def switching(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw")
        await asyncio.sleep(1)

    async with upstream(switching) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER)
    assert response.status == 502 and b"not HTTP/1.1" in response.body


async def test_one_kept_alive_connection_routes_each_request_to_its_own_port() -> None:
    async def named(name: bytes) -> Handler:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await read_request(reader) is not None:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))

        return serve

    sessions = Sessions()
    async with upstream(await named(b"first")) as one, upstream(await named(b"second")) as two:
        async with running_proxy(sessions) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
            responses = Reader(reader)
            bodies = []
            for port in (one, two, one):
                writer.write(f"GET {path_of(port)} HTTP/1.1\r\nHost: x\r\n{OWNER}\r\n".encode())
                bodies.append((await responses.response()).body)
            writer.write(f"GET {path_of(one, owned=False)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # no cookie, no pass
            refused = await responses.response()
            writer.close()
    assert bodies == [b"first", b"second", b"first"]
    assert refused.status == 403


async def test_a_get_is_sent_again_when_a_kept_alive_node_connection_closes_as_it_goes_and_a_post_is_not() -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await read_request(reader)  # a second one on this connection: closed unanswered, as on a node's timeout
        writer.transport.abort()

    async with upstream(one_per_connection) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        responses = Reader(reader)
        statuses = []
        for method in ("GET", "GET", "GET", "POST"):
            body = "Content-Length: 1\r\n\r\nx" if method == "POST" else "\r\n"
            writer.write(f"{method} {path_of(node)} HTTP/1.1\r\nHost: x\r\n{OWNER}{body}".encode())
            statuses.append((await responses.response()).status)
        writer.close()
    assert statuses == [200, 200, 200, 502]


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(
            b"".join(f"GET {path_of(node, f'/{n}')} HTTP/1.1\r\nHost: x\r\n{OWNER}\r\n".encode() for n in range(5))
        )
        responses = Reader(reader)
        firsts = [(await responses.response()).body.split(b"\n")[0] for _ in range(5)]
        writer.close()
    assert firsts == [f"/{n}".encode() for n in range(5)]


async def test_a_chunked_upload_and_a_chunked_answer_pass_through_in_pieces() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (request[2], b"-and-", b"more"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")

    async with upstream(chunked) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(
            f"POST {path_of(node)} HTTP/1.1\r\nHost: x\r\n{OWNER}Transfer-Encoding: chunked\r\n\r\n".encode()
            + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        response = await Reader(reader).response()
        writer.close()
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.body == b"hello world-and-more"


async def test_a_large_download_streams_with_the_node_answering_before_the_visitor_reads_it_all() -> None:
    size = 64 << 20

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            writer.write(block)
            await writer.drain()

    async with upstream(big) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(f"GET {path_of(node)} HTTP/1.1\r\nHost: x\r\n{OWNER}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.3)  # the visitor does not read: the proxy must not hold the rest
        received = 0
        while received < size:
            data = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert data
            received += len(data)
        writer.close()
    assert b"Content-Length: %d" % size in head
    assert received == size


async def test_a_large_upload_streams_to_a_node_that_reads_it_slowly() -> None:
    size = 32 << 20

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.3)  # the proxy must hold at most its buffers meanwhile, not the upload
        received = 0
        while received < size:
            received += len(await reader.read(1 << 20))
        answer = str(received).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))

    async with upstream(slow_reader) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(f"PUT {path_of(node)} HTTP/1.1\r\nHost: x\r\n{OWNER}Content-Length: {size}\r\n\r\n".encode())
        block = b"u" * (1 << 20)
        for _ in range(size >> 20):
            writer.write(block)
            await writer.drain()
        response = await Reader(reader).response()
        writer.close()
    assert (response.status, response.body) == (200, str(size).encode())


async def test_an_until_close_answer_is_passed_on_and_the_visitor_connection_closed_after() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        writer.close()

    async with upstream(until_close) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER)
    assert response.body == b"all of it"
    assert response.headers["connection"] == "close"


async def test_a_websocket_echoes_through_the_host_form_with_the_owners_cookie_and_is_refused_without() -> None:
    async def echo(connection: websockets.ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server, running_proxy(Sessions()) as proxy:
        node = server.sockets[0].getsockname()[1]
        host = host_of(node, proxy)
        cookie = handoff.make_cookie(SESSION_ID.hex, "http://127.0.0.1:8000")
        url = f"ws://{host}/"  # the Host the browser sends; the connection goes to loopback
        async with websockets.connect(
            url, host="127.0.0.1", port=proxy, additional_headers={"Cookie": f"pg_port={cookie}"}
        ) as websocket:
            for n in range(50):
                await websocket.send(f"message {n}")
                assert await websocket.recv() == f"message {n}"
            await websocket.send(b"\x00" * 300000)
            assert await websocket.recv() == b"\x00" * 300000
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, host="127.0.0.1", port=proxy):
                pass
    assert refused.value.response.status_code == 403


async def test_the_https_option_speaks_tls_to_the_node_with_its_name_and_a_self_signed_certificate(
    tmp_path: Path,
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=self-signed", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: names.append(name)  # type: ignore[assignment,return-value]
    server = await asyncio.start_server(echo_server, "127.0.0.1", 0, ssl=context)
    node = server.sockets[0].getsockname()[1]
    sessions = Sessions()
    sessions.set(nodes={"node1": Node("running", "127.0.0.1", {str(node): {"https": True}})})
    try:
        async with running_proxy(sessions) as proxy:
            response = await get(proxy, path_of(node, "/secure"), headers=OWNER)
    finally:
        server.close()
    assert response.status == 200 and response.body.startswith(b"/secure\n")
    assert names == ["node1"]


async def test_two_hundred_websockets_at_once_lose_no_message() -> None:
    async def echo(connection: websockets.ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def client(proxy: int, node: int, number: int) -> list[str]:
        async with websockets.connect(f"ws://127.0.0.1:{proxy}{path_of(node)}") as websocket:
            for n in range(20):
                await websocket.send(f"{number}:{n}")
            return [str(await websocket.recv()) for _ in range(20)]

    async with websockets.serve(echo, "127.0.0.1", 0, max_queue=None) as server, running_proxy(Sessions()) as proxy:
        node = server.sockets[0].getsockname()[1]
        echoed = await asyncio.gather(*(client(proxy, node, number) for number in range(200)))
    assert echoed == [[f"{number}:{n}" for n in range(20)] for number in range(200)]


async def test_the_handoff_token_becomes_a_host_only_cookie_and_a_redirect_to_the_clean_url() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        host = host_of(node, proxy)
        token = handoff.make_token(SESSION_ID, host.split(":")[0], "http://127.0.0.1:8000")
        response = await get(proxy, f"/a/b?x=1&__playground_token={token}", host=host)
        assert response.status == 302
        assert response.headers["location"] == "/a/b?x=1"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("pg_port=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Domain" not in cookie
        value = cookie.split(";")[0]
        opened = await get(proxy, "/a/b?x=1", host=host, headers=f"Cookie: {value}\r\n")
        other_port = await get(proxy, "/", host=host_of(node + 1 if node < 65535 else 1, proxy))
    assert opened.status == 200
    assert "cookie" not in opened.body.decode().split("\n\n")[0]
    assert opened.headers["set-cookie"] == "app=1"  # a node's own host-only cookie; not pg_x nor Domain=
    assert len([1 for name, _ in opened.raw_headers if name == "set-cookie"]) == 1
    assert other_port.status == 403


@pytest.mark.parametrize("tamper", ["expired", "other host", "other session", "forged"])
async def test_a_bad_handoff_token_gets_403(tamper: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions()
    async with running_proxy(sessions) as proxy:
        host = host_of(8080, proxy)
        name = host.split(":")[0]
        session_id = uuid.uuid4() if tamper == "other session" else SESSION_ID
        token = handoff.make_token(session_id, "9-node1-x.localhost" if tamper == "other host" else name, "")
        if tamper == "forged":
            token = token[:-3] + "abc"
        if tamper == "expired":
            monkeypatch.setattr(handoff, "TOKEN_SECONDS", -1)
        response = await get(proxy, f"/?__playground_token={token}", host=host)
    assert response.status == 403
    assert b"one-time pass" in response.body


async def test_a_head_request_gets_the_head_alone() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER, method="HEAD")
    assert response.status == 200
    assert int(response.headers["content-length"]) > 0


async def test_a_request_head_larger_than_64_kib_gets_431() -> None:
    async with running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(8080), headers=f"X-Big: {'a' * 70000}\r\n")
    assert response.status == 431


async def test_a_kept_alive_connection_sees_a_port_unshared_or_its_session_ended_once_the_directory_does() -> None:
    sessions = Sessions()
    async with upstream(echo_server) as node, running_proxy(sessions) as proxy:
        sessions.set(nodes={"node1": Node("running", "127.0.0.1", {str(node): {"shared": True}})})
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        responses = Reader(reader)
        statuses = []
        for change in ({}, {"nodes": {"node1": Node("running", "127.0.0.1", {})}}, {"active": False}):
            sessions.set(**change)  # the directory hands out a new answer, as after its second
            for _ in range(2):
                writer.write(f"GET / HTTP/1.1\r\nHost: {host_of(node, proxy)}\r\n\r\n".encode())
                statuses.append((await responses.response()).status)
        writer.close()
    assert statuses == [200, 200, 403, 403, 410, 410]


async def test_each_request_of_a_kept_alive_connection_gets_its_own_path_and_cookies_their_own_verdict() -> None:
    async with upstream(echo_server) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        responses = Reader(reader)
        answers = []
        for path, cookie in ((path_of(node, "/a"), ""), (path_of(node, "/b?c=1"), ""), (path_of(node, "/c"), OWNER)):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{cookie}\r\n".encode())
            answers.append(await responses.response())
        writer.write(f"GET {path_of(node, '/d', owned=False)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answers.append(await responses.response())
        writer.close()
    assert [a.body.split(b"\n")[0] for a in answers[:3]] == [b"/a", b"/b?c=1", b"/c"]
    assert "cookie: theme=dark; other=2" in answers[2].body.decode().splitlines()
    assert answers[3].status == 403


def host_owner() -> str:
    """The Cookie header of the host form's owner (what the handoff gives)."""
    return f"Cookie: {handoff.COOKIE_NAME}={handoff.make_cookie(SESSION_ID.hex, 'http://127.0.0.1:8000')}\r\n"


def answering(head: bytes, body: bytes = b"") -> Handler:
    """A node port that answers every request with ``head`` and ``body`` as they are, keep-alive."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            writer.write(head + body)
            await writer.drain()

    return serve


async def test_a_plain_answer_head_is_passed_on_as_the_node_sent_it_with_the_path_forms_policy() -> None:
    head = b"HTTP/1.1 200 Fine\r\nX-Custom:  spaced \r\nContent-Length: 2\r\n\r\n"
    async with upstream(answering(head, b"ok")) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host_of(node, proxy)}\r\n{host_owner()}\r\n".encode())
        host_form = await reader.readexactly(len(head) + 2)
        writer.write(f"GET {path_of(node)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        path_form = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert host_form == head + b"ok"
    assert path_form.startswith(head[:-2])
    assert b"Content-Security-Policy: sandbox" in path_form and b"Connection: close\r\n" in path_form
    assert path_form.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: pg_port=stolen\r\nSet-Cookie: app=1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["hop-by-hop", "cookies", "proxy-te", "http-1.0", "after-100"],
)
async def test_an_answer_head_with_what_must_change_loses_hop_by_hop_headers_and_playgrounds_cookies(
    head: bytes,
) -> None:
    async with upstream(answering(head, b"ok")) as node, running_proxy(Sessions()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        responses = Reader(reader)
        answers = []
        for _ in range(2):  # the connection goes on after each
            writer.write(f"GET / HTTP/1.1\r\nHost: {host_of(node, proxy)}\r\n{host_owner()}\r\n".encode())
            answer = await responses.response()
            answers.append(answer if answer.status != 100 else await responses.response())  # after a 100
        writer.close()
    for answer in answers:
        assert (answer.status, answer.body) == (200, b"ok")
        names = [name for name, _ in answer.raw_headers]
        assert not {"keep-alive", "connection", "proxy-connection", "te"} & set(names)
        assert [value for name, value in answer.raw_headers if name == "set-cookie"] == (
            ["app=1"] if b"app=1" in head else []
        )


async def test_an_answer_head_larger_than_64_kib_gets_the_502_page() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Big: %s\r\n" % (b"a" * 70000) + b"Content-Length: 2\r\n\r\n"
    async with upstream(answering(head, b"ok")) as node, running_proxy(Sessions()) as proxy:
        response = await get(proxy, path_of(node), headers=OWNER)
    assert response.status == 502 and b"larger than 64 KiB" in response.body
