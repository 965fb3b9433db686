"""The front's filling of the mirror's storage (playground/registry/filling.py): one fetch of a blob
from the upstream, through a Bearer token challenge and a CDN redirect as Docker Hub answers,
checked and put where the store's filesystem driver serves it from, or nothing left at all.

The upstream is a small HTTP server on loopback playing Docker Hub's three parties: the registry
(401 with a challenge, then 307 to the CDN), the token service, and a CDN that refuses a request
carrying the registry's token (as signed storage URLs do)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.registry.filling import FILLING, FillError, fill
from playground.registry.paths import blob_path, storage
from playground.registry.paths import layer_link_path as link_path

LAYER = b"a layer's bytes " * 5000
DIGEST = f"sha256:{hashlib.sha256(LAYER).hexdigest()}"
TOKEN = "anonymous-pull-token"


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.body = body
        self.gets: Counter[str] = Counter()
        self.cdn_authorizations: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        path = self.path.split("?", 1)[0]
        self.server.gets[path] += 1
        if path == "/token":
            assert "scope=repository%3Alibrary%2Fhttpd%3Apull" in self.path, self.path
            self.answer(200, json.dumps({"token": TOKEN}).encode())
        elif path.startswith("/v2/"):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = (
                    f'Bearer realm="{self.server.url}/token",service="hub",scope="repository:library/httpd:pull"'
                )
                self.answer(401, b"{}", {"WWW-Authenticate": challenge})
            else:
                self.answer(307, b"", {"Location": f"/cdn/{path.rsplit('/', 1)[1]}?signature=abc"})
        elif path.startswith("/cdn/"):
            authorization = self.headers.get("Authorization")
            if authorization:
                self.server.cdn_authorizations.append(authorization)
                self.answer(400, b"Only one auth mechanism allowed")
            else:
                self.answer(200, self.server.body)
        else:
            self.answer(404, b"")

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def serving(body: bytes) -> Iterator[Upstream]:
    server = Upstream(body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield from serving(LAYER)


@pytest.fixture
def lying_upstream() -> Iterator[Upstream]:
    yield from serving(b"not the layer that was asked for")


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_blob_is_fetched_once_through_the_token_challenge_and_the_redirect_and_linked_where_the_store_serves_it(
    tmp_path: Path, upstream: Upstream
) -> None:
    assert fill(tmp_path, upstream.url, "library/httpd", DIGEST) == len(LAYER)
    assert blob_path(tmp_path, DIGEST).read_bytes() == LAYER
    hexdigest = DIGEST.split(":", 1)[1]
    assert blob_path(tmp_path, DIGEST) == (
        tmp_path / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    )
    link = link_path(tmp_path, "library/httpd", DIGEST)
    assert link == tmp_path / "docker/registry/v2/repositories/library/httpd/_layers/sha256" / hexdigest / "link"
    assert link.read_text() == DIGEST
    cdn = f"/cdn/{DIGEST}"
    assert upstream.gets[cdn] == 1, upstream.gets  # the layer's bytes, once
    assert upstream.gets["/token"] == 1
    assert upstream.cdn_authorizations == []  # the registry's token never went to the CDN
    assert not list((storage(tmp_path) / FILLING).iterdir())


def test_a_blob_already_kept_under_another_repository_is_only_linked(tmp_path: Path, upstream: Upstream) -> None:
    fill(tmp_path, upstream.url, "library/httpd", DIGEST)
    before = sum(upstream.gets.values())
    fill(tmp_path, upstream.url, "library/other", DIGEST)
    assert sum(upstream.gets.values()) == before
    assert link_path(tmp_path, "library/other", DIGEST).read_text() == DIGEST


def test_bytes_of_another_digest_are_refused_and_leave_nothing(tmp_path: Path, lying_upstream: Upstream) -> None:
    with pytest.raises(FillError, match=f"whose digest is not {DIGEST}"):
        fill(tmp_path, lying_upstream.url, "library/httpd", DIGEST)
    assert leftovers(tmp_path) == []


def test_an_upstream_that_refuses_is_a_fill_error_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(FillError, match="ConnectionRefusedError"):
        fill(tmp_path, f"http://127.0.0.1:{port}", "library/httpd", DIGEST)
    assert leftovers(tmp_path) == []


def test_an_upstream_without_the_blob_is_a_fill_error_naming_its_answer(tmp_path: Path, upstream: Upstream) -> None:
    with pytest.raises(FillError, match="answered 404"):
        fill(tmp_path, upstream.url + "/elsewhere", "library/httpd", DIGEST)
    assert leftovers(tmp_path) == []
