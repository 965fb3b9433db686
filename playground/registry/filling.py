"""Keeping a blob from the upstream in the mirror's storage with one fetch.

Distribution 2.8's pull-through cache fetches a blob it lacks twice for one request (a copy to
answer, ``copyContent``, and a goroutine to keep it, ``storeLocal``:
``registry/proxy/proxyblobstore.go``). The front (:mod:`playground.registry.front`) lets one
request per blob through at a time; before passing that leader on, it calls :func:`fill`, which
fetches the blob from the upstream once, checks its digest, and puts it where the store's
filesystem driver keeps blobs, linked into the repository it was asked for::

    <root>/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data
    <root>/docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link   ("sha256:<hex>")

The store then serves the leader and every follower from disk, as it serves what it fetched or
what was seeded (``proxyBlobStore.ServeBlob`` serves a linked blob without asking the upstream):
one upstream fetch per blob, however many engines pull it at once. When filling fails (the
upstream refuses, answers an error, or sends bytes of another digest), nothing is left in the
storage and the front passes the request to the store as before, which then tries the upstream
itself.

The upstream may ask for a token (Docker Hub answers ``401`` with ``WWW-Authenticate: Bearer
realm=...,service=...,scope=...``): an anonymous one is fetched from the realm, as an engine does.
Redirects (Docker Hub sends blobs from a CDN with ``307``) are followed without the token, which
belongs to the registry and not to the CDN's signed URL.

Blocking (``http.client``, files): the front runs it in a thread. Imports only the standard library
and :mod:`playground.registry.paths`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import urllib.parse
from pathlib import Path

from playground.registry.paths import blob_path, layer_link_path, storage

CONNECT_TIMEOUT = 10.0  # seconds for a connection, and between two reads of an answer
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024
FILLING = "_playground_filling"  # under the driver's files: temporary files, renamed into blobs/ once checked
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class FillError(Exception):
    """The blob could not be kept; the sentence says why (the front then leaves it to the store).
    ``unreachable``: no answer came from the upstream at all (refused, unresolved, timed out)."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def fill(root: Path, upstream: str, repository: str, digest: str) -> int:
    """Fetch blob ``digest`` of ``repository`` from ``upstream`` (a registry URL) into the storage at
    ``root`` and link it into ``repository``; the blob's size. A blob already kept in the storage (under
    any repository) is only linked, with no fetch. Raises :class:`FillError`, leaving nothing behind."""
    if not digest.startswith("sha256:"):
        raise FillError(f"{digest} is not a sha256 digest; only those are kept by the front.")
    data = blob_path(root, digest)
    if data.is_file():
        size = data.stat().st_size
    else:
        size = _fetch_into(
            data, f"{upstream.rstrip('/')}/v2/{repository}/blobs/{digest}", digest, storage(root) / FILLING
        )
    _write_atomically(layer_link_path(root, repository, digest), digest.encode())
    return size


def _fetch_into(data: Path, url: str, digest: str, scratch: Path) -> int:
    """Download ``url`` into ``data`` (through a temporary file in ``scratch``), checking ``digest``."""
    scratch.mkdir(parents=True, exist_ok=True)
    partial = scratch / f"{digest.split(':', 1)[1]}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        response, connection = _open(url)
        try:
            hasher = hashlib.sha256()
            size = 0
            with open(partial, "wb") as out:
                while chunk := response.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        finally:
            connection.close()
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise FillError(f"the upstream sent {size} bytes whose digest is not {digest}")
        data.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, data)
        return size
    except (OSError, http.client.HTTPException) as exc:
        raise FillError(f"fetching {url} failed: {exc.__class__.__name__}: {exc}", unreachable=True) from None
    finally:
        partial.unlink(missing_ok=True)


def _open(url: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """GET ``url``: the ``200`` answer (its body unread) and its connection, after a token the
    registry asks for and redirects (followed without the token)."""
    token = ""
    for _ in range(MAX_REDIRECTS + 2):
        response, connection = _get(url, {"Authorization": f"Bearer {token}"} if token else {})
        if response.status == 200:
            return response, connection
        location = response.getheader("Location", "")
        challenge = response.getheader("WWW-Authenticate", "")
        connection.close()
        if response.status in (301, 302, 303, 307, 308) and location:
            url, token = urllib.parse.urljoin(url, location), ""
        elif response.status == 401 and challenge.lower().startswith("bearer ") and not token:
            token = _anonymous_token(challenge)
        else:
            raise FillError(f"the upstream answered {response.status} {response.reason} for {url}")
    raise FillError(f"too many redirects or challenges for {url}")


def _get(url: str, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FillError(f"{url} is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request("GET", target or "/", headers={**headers, "User-Agent": "playground-registry-front"})
    return connection.getresponse(), connection


def _anonymous_token(challenge: str) -> str:
    """The token a ``Bearer realm=...,service=...,scope=...`` challenge's realm gives anyone."""
    params = dict(_CHALLENGE_PARAM.findall(challenge))
    realm = params.pop("realm", "")
    if not realm:
        raise FillError(f"the upstream's challenge names no realm: {challenge!r}")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    response, connection = _get(f"{realm}?{query}" if query else realm, {})
    try:
        if response.status != 200:
            raise FillError(f"the upstream's token service answered {response.status} {response.reason}")
        body = json.loads(response.read(1024 * 1024) or b"{}")
    except ValueError:
        raise FillError("the upstream's token service answered something other than JSON") from None
    finally:
        connection.close()
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise FillError("the upstream's token service gave no token")
    return token


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    partial.write_bytes(content)
    os.replace(partial, path)
