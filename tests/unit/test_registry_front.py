"""The registry mirror's front: its routing table, its refusals in Distribution's error format, and
the coalescing of concurrent fetches of one blob, against a fake store that counts what it fetches
"upstream" (a request for a blob it has not linked yet) and links a blob a moment after answering,
as Distribution 2.8 does."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from playground.hosts import certificates
from playground.registry import front as front_module
from playground.registry.front import Front, listening_socket, route
from sandbox.wire import tls

DIGEST = "sha256:" + "ab" * 32
BLOB_PATH = f"/v2/library/httpd/blobs/{DIGEST}"
BODY = b"layer bytes " * 1000


@pytest.mark.parametrize(
    "method,target,kind,blob",
    [
        ("GET", "/v2/", "store", None),
        ("GET", "/v2/library/httpd/manifests/latest", "store", None),
        ("HEAD", "/v2/library/httpd/manifests/sha256:" + "0" * 64, "store", None),
        ("GET", BLOB_PATH, "store", ("library/httpd", DIGEST)),
        ("GET", BLOB_PATH + "?x=1", "store", ("library/httpd", DIGEST)),
        ("GET", "/v2/a/b/c/blobs/" + DIGEST, "store", ("a/b/c", DIGEST)),
        ("GET", "/v2/../etc/blobs/" + DIGEST, "store", None),  # not a name: no link path is built from it
        ("POST", "/v2/library/httpd/blobs/uploads/", "refuse", None),
        ("PUT", "/v2/library/httpd/manifests/latest", "refuse", None),
        ("DELETE", "/v2/library/httpd/manifests/latest", "refuse", None),
        ("PATCH", "/v2/library/httpd/blobs/uploads/x", "refuse", None),
        ("GET", "/", "refuse", None),
        ("GET", "/metrics", "refuse", None),
        ("GET", "/v2", "refuse", None),
    ],
)
def test_pulls_go_to_the_store_and_everything_else_is_refused(
    method: str, target: str, kind: str, blob: tuple[str, str] | None
) -> None:
    decision = route(method, target)
    assert (decision.kind, decision.blob) == (kind, blob)


def test_a_push_is_refused_with_distributions_error_json_and_a_sentence() -> None:
    answer = route("PUT", "/v2/library/httpd/manifests/latest").answer
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 405 ")
    assert b"Allow: GET, HEAD" in head
    error = json.loads(body)["errors"][0]
    assert error["code"] == "UNSUPPORTED"
    assert "only serves pulls" in error["message"] and "registry of your own" in error["message"]


class FakeStore:
    """Answers every request after ``delay`` seconds; a blob it has not linked counts as an upstream
    fetch, and is linked ``link_after`` seconds after its answer (Distribution keeps it then)."""

    def __init__(self, root: Path, delay: float = 0.2, link_after: float = 0.1, status: int = 200) -> None:
        self.root, self.delay, self.link_after, self.status = root, delay, link_after, status
        self.fetches: Counter[str] = Counter()
        self.requests = 0

    def link(self, name: str, digest: str) -> Path:
        algorithm, hexdigest = digest.split(":")
        return self.root / "docker/registry/v2/repositories" / name / "_layers" / algorithm / hexdigest / "link"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        self.requests += 1
        assert b"Connection: close" in head
        name, digest = target[len("/v2/") :].split("/blobs/")
        kept = self.link(name, digest).exists()
        if not kept:
            self.fetches[target] += 1
            await asyncio.sleep(self.delay)
        body = BODY if self.status == 200 else b'{"errors":[]}'
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        if method == "GET":
            writer.write(body)
        await writer.drain()
        writer.close()
        if not kept and self.status == 200:
            await asyncio.sleep(self.link_after)
            self.link(name, digest).parent.mkdir(parents=True, exist_ok=True)
            self.link(name, digest).write_text(digest)


async def started(store: FakeStore | None, root: Path) -> tuple[Front, int, list[asyncio.AbstractServer]]:
    servers = []
    store_port = 1  # nothing listens there: refused
    if store is not None:
        server = await asyncio.start_server(store.serve, "127.0.0.1", 0)
        servers.append(server)
        store_port = server.sockets[0].getsockname()[1]
    front = Front("127.0.0.1", store_port, root)
    sock = listening_socket("127.0.0.1", 0)
    servers.append(await asyncio.start_server(front.serve_client, sock=sock))
    return front, sock.getsockname()[1], servers


async def get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: 10.89.0.1:5050\r\nConnection: keep-alive\r\n\r\n".encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_fifty_concurrent_pulls_of_one_blob_cost_the_store_one_upstream_fetch(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    front, port, servers = await started(store, tmp_path)
    answers = await asyncio.gather(*(get(port, BLOB_PATH) for _ in range(50)))
    assert answers == [(200, BODY)] * 50
    assert store.fetches == {BLOB_PATH: 1}
    assert front.leaders == 1 and front.flights == {}
    for server in servers:
        server.close()


async def test_a_blob_the_store_keeps_is_passed_at_once_without_a_flight(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    store.link("library/httpd", DIGEST).parent.mkdir(parents=True)
    store.link("library/httpd", DIGEST).write_text(DIGEST)
    front, port, servers = await started(store, tmp_path)
    assert await asyncio.gather(*(get(port, BLOB_PATH) for _ in range(5))) == [(200, BODY)] * 5
    assert (front.leaders, sum(store.fetches.values()), store.requests) == (0, 0, 5)
    for server in servers:
        server.close()


async def test_when_the_leader_gets_no_blob_the_others_ask_the_store_themselves_at_once(tmp_path: Path) -> None:
    store = FakeStore(tmp_path, delay=0.1, status=404)
    front, port, servers = await started(store, tmp_path)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    answers = await asyncio.gather(*(get(port, BLOB_PATH) for _ in range(5)))
    assert [status for status, _ in answers] == [404] * 5
    assert loop.time() - begun < front_module.LINK_WAIT / 2  # nobody waited for a link that never comes
    for server in servers:
        server.close()


async def test_a_head_is_coalesced_like_a_get(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    front, port, servers = await started(store, tmp_path)
    answers = await asyncio.gather(*(get(port, BLOB_PATH, "HEAD") for _ in range(10)))
    assert [status for status, _ in answers] == [200] * 10
    assert store.fetches == {BLOB_PATH: 1}
    for server in servers:
        server.close()


async def test_a_store_that_does_not_answer_gives_a_503_that_says_so(tmp_path: Path) -> None:
    _front, port, servers = await started(None, tmp_path)
    status, body = await get(port, "/v2/library/httpd/manifests/latest")
    assert status == 503
    assert (
        json.loads(body)["errors"][0]["message"]
        == "The registry mirror's store is not answering; try again in a moment."
    )
    for server in servers:
        server.close()


async def test_a_push_through_the_front_never_reaches_the_store(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    _front, port, servers = await started(store, tmp_path)
    status, body = await get(port, "/v2/library/httpd/blobs/uploads/", "POST")
    assert status == 405 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
    assert store.requests == 0
    for server in servers:
        server.close()


async def test_the_sandbox_hosts_address_of_the_site_serves_no_pull(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    front, port, servers = await started(store, tmp_path)
    front.pushes_only = True  # PLAYGROUND_REGISTRY_HOSTS_LISTEN's front: the sessions' pushes alone
    status, body = await get(port, BLOB_PATH)
    assert status == 404 and "pull from the mirror of the sandbox host" in json.loads(body)["errors"][0]["message"]
    assert store.requests == 0
    for server in servers:
        server.close()


def authority_with_registry(where: Path, address: str = "127.0.0.1") -> Path:
    """An authority and the web host's registry certificate for ``address``, as 'hostcerts site'
    makes them with PLAYGROUND_REGISTRY_HOSTS_LISTEN set; the directory."""
    certificates.make_authority(where)
    certificates.make_registry(where, address)
    return where


async def web_host_registry(tls_dir: Path, seen: list[bytes]) -> asyncio.Server:
    """The web host's end of the sandbox hosts' link, over TLS with its registry certificate, answering
    every request 401 (what the web host says does not matter here) and keeping each request's head."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls.registry_server_context(tls_dir))


async def test_a_sandbox_hosts_front_passes_a_sessions_request_to_the_web_host_as_it_came_over_tls(
    tmp_path: Path,
) -> None:
    seen: list[bytes] = []
    site = authority_with_registry(tmp_path / "site")
    relay_server = await web_host_registry(site, seen)
    front, port, servers = await started(FakeStore(tmp_path), tmp_path)
    via = relay_server.sockets[0].getsockname()[1]
    front.push = front_module.PushRelay("127.0.0.1", via, tls.authority_context(site / tls.CA_CERT))
    status, body = await get(port, "/v2/pg-0123456789ab/farbox/manifests/1")
    assert (status, body) == (401, b"{}")  # the web host's answer, whatever it is
    assert seen[0].startswith(b"GET /v2/pg-0123456789ab/farbox/manifests/1 HTTP/1.1\r\n")
    assert b"Host: 10.89.0.1:5050\r\n" in seen[0]  # the name the engine used, for the web host's answers
    assert await get(port, BLOB_PATH) == (200, BODY)  # pulls stay with this host's store
    relay_server.close()
    for server in servers:
        server.close()


@pytest.mark.parametrize("wrong", ["another authority", "another address"])
async def test_a_sandbox_hosts_front_passes_nothing_to_a_registry_whose_certificate_is_not_the_web_hosts(
    tmp_path: Path, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bytes] = []
    site = authority_with_registry(tmp_path / "site", "127.0.0.1" if wrong == "another authority" else "10.0.0.1")
    relay_server = await web_host_registry(site, seen)
    trusted = authority_with_registry(tmp_path / "other") if wrong == "another authority" else site
    front, port, servers = await started(FakeStore(tmp_path), tmp_path)
    via = relay_server.sockets[0].getsockname()[1]
    front.push = front_module.PushRelay("127.0.0.1", via, tls.authority_context(trusted / tls.CA_CERT))
    status, body = await get(port, "/v2/pg-0123456789ab/farbox/manifests/1")
    assert status == 503 and "is not answering" in json.loads(body)["errors"][0]["message"]
    assert seen == []  # the session's credentials never left
    assert "refused over TLS" in caplog.text and "certificate verify failed" in caplog.text
    relay_server.close()
    for server in servers:
        server.close()


def test_an_http_1_0_request_without_host_reaches_the_store_with_one() -> None:
    request = front_module.parse_head(b"GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert request.for_store("127.0.0.1:5051") == (
        b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5051\r\nConnection: close\r\n\r\n"
    )


def test_the_front_binds_to_an_address_the_host_does_not_have_yet() -> None:
    sock = listening_socket("10.254.254.1", 0)  # IP_FREEBIND: the agent makes its bridge later
    assert sock.getsockname()[0] == "10.254.254.1"
    sock.close()
