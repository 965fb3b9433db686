"""``python -m playground.registry.front``: the registry mirror's front, where sandboxes pull from.

It listens on the agent's bridge address (the sandboxes' gateway) at PLAYGROUND_REGISTRY_PORT, the
one host port the walls let sandboxes reach (``IP_FREEBIND``: it may start before the agent makes
the bridge), and passes pulls to the store (``docker-registry`` on loopback,
:mod:`playground.registry.store`)::

    dockerd in a sandbox --GET/HEAD /v2/...--> front (gateway:5050) ----> store (127.0.0.1:5051) --> upstream
                          <--405 UNSUPPORTED-- everything else            (cache or read-only)

- **Only pulls**: ``GET`` and ``HEAD`` of ``/v2/...`` go to the store, one request per connection
  (``Connection: close`` both ways: pulls open a connection a blob and loopback is cheap); every
  other method or path is refused with Distribution's error JSON and a sentence (:func:`route`).
- **Coalescing**: Distribution 2.8 fetches a blob it lacks from the upstream once for the request
  and once more to keep it, and once again for every request for it that arrives meanwhile
  (``registry/proxy/proxyblobstore.go``: ``ServeBlob``'s ``inflight`` map only stops a second
  ``storeLocal``). So the front lets one request per (repository, blob) through at a time: the
  first one (the leader) first keeps the blob itself with one upstream fetch
  (:mod:`playground.registry.filling`: into the storage, linked into the repository), then goes to
  the store, which serves it from disk; those arriving while it is in flight wait until it has
  ended, then go to the store too. Where filling fails (no upstream, or it could not be reached in
  the last UPSTREAM_PAUSE seconds, or it answered an error), the leader goes to the store as it is,
  which fetches it (twice) and links it (its ``link`` file under ``repositories/<name>/_layers``)
  before the followers go. A blob the store has linked already is passed at once. 50 sandboxes
  pulling one image thus cost the upstream one fetch of each of its blobs.

- **Pushes** (:class:`PushSide`, when the launcher gives one): requests under a session's
  namespace (``/v2/pg-<12 hex>/...``), and ``/v2/`` asked with credentials or by the name
  ``registry``, go to the sessions' push registry instead, with their bodies, once
  :func:`playground.registry.push.decide` allows them (the session's credentials, its namespace,
  its quota). Between writes the front removes ended sessions' namespaces and the blobs nobody
  links any more (:meth:`PushSide.sweep`).

Imports only the standard library, uvloop, :mod:`playground.config`,
:mod:`playground.registry.filling`, :mod:`playground.registry.push` and
:mod:`playground.metrics.instruments` (pulls and their cache hits, docs/metrics.md); ``main`` sets Django up for
the sessions' passwords (:mod:`playground.registry.sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from playground import config
from playground.metrics.instruments import REGISTRY_BLOBS, REGISTRY_PULLS
from playground.registry import filling, push
from playground.registry.paths import hosts_authority, layer_link_path, mirror_root
from sandbox.wire import tls
from sandbox.wire.envparse import ConfigError

log = logging.getLogger("playground.registry.front")

IP_FREEBIND = 15  # linux/in.h: bind to an address the host does not have (yet)
HEAD_LIMIT = 16 * 1024  # bytes of a request's or an answer's head
CHUNK = 256 * 1024
CLIENT_HEAD_TIMEOUT = 30.0  # seconds a client may take to send its request's head
CONNECT_TIMEOUT = 5.0  # seconds the store may take to accept
STORE_TIMEOUT = 300.0  # seconds the store may go without sending anything (it may be fetching upstream)
FLIGHT_WAIT = 900.0  # seconds a request waits for the leader of its blob before going to the store anyway
UPSTREAM_PAUSE = 60.0  # seconds filling is not tried after the upstream could not be reached
LINK_WAIT = 30.0  # seconds the leader waits, after its answer, for the store to have kept the blob
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS ClientHello
MAX_CLIENTS = 1024  # connections at once; more are answered 503 at once

# Distribution's repository names (reference/regexp.go) and a sha256 digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
BLOB = re.compile(rf"/v2/(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)/blobs/(?P<digest>sha256:[0-9a-f]{{64}})")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

PUSHES_ONLY = (
    "This address of the site's registry serves the sandbox hosts' pushes to the session registry "
    "alone (/v2/pg-.../); pull from the mirror of the sandbox host instead."
)
PULLS_ONLY = (
    "This registry mirror only serves pulls (GET and HEAD of /v2/...); {what} is not possible here. "
    "To share an image, push it to a registry of your own."
)


error_answer = push.error_answer  # Distribution's error JSON, which docker prints


@dataclass(frozen=True)
class Route:
    """What to do with a request: pass it to the store (``blob`` set for a blob, whose fetches are
    coalesced) or refuse it with ``answer``."""

    kind: Literal["store", "refuse"]
    blob: tuple[str, str] | None = None  # (repository, digest)
    answer: bytes = b""


def route(method: str, target: str) -> Route:
    """The route of one request; a pure function, the front's whole policy."""
    path = target.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        what = f"{method} (a push or a delete)" if path.startswith("/v2/") else method
        return Route(
            "refuse",
            answer=error_answer(
                405, "Method Not Allowed", "UNSUPPORTED", PULLS_ONLY.format(what=what), "Allow: GET, HEAD\r\n"
            ),
        )
    if path != "/v2/" and not path.startswith("/v2/"):
        return Route(
            "refuse",
            answer=error_answer(405, "Method Not Allowed", "UNSUPPORTED", PULLS_ONLY.format(what=f"{path!r}")),
        )
    # /v2/<session namespace>/... went to the sessions' push registry before this (PushSide.claims).
    blob = BLOB.fullmatch(path)
    return Route("store", blob=(blob["name"], blob["digest"]) if blob else None)


@dataclass
class Request:
    """A parsed request head: the method, the target and the headers to pass on."""

    method: str
    target: str
    headers: list[tuple[str, str]]

    def for_store(self, store: str) -> bytes:
        """The head sent to the store (``host:port``): the same request as HTTP/1.1, hop-by-hop headers
        replaced by ``Connection: close``, with a ``Host`` (the store's if an HTTP/1.0 client sent none)."""
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in HOP_BY_HOP]
        if not any(k.lower() == "host" for k, _ in self.headers):
            lines.append(f"Host: {store}")
        return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


class BadRequest(Exception):
    pass


def parse_head(head: bytes) -> Request:
    """The request in ``head`` (through its blank line); BadRequest if it is not an HTTP/1.x request
    with no body."""
    try:
        first, *rest = head.decode("latin-1").split("\r\n")
        method, target, version = first.split(" ")
    except ValueError:
        raise BadRequest("not an HTTP request line") from None
    if not version.startswith("HTTP/1.") or not target.startswith("/") or not method.isalpha():
        raise BadRequest("not an HTTP/1 request")
    headers = []
    for line in rest:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"malformed header line {line[:40]!r}")
        headers.append((name, value.strip()))
    for name, value in headers:
        if name.lower() == "transfer-encoding" or (name.lower() == "content-length" and value != "0"):
            if method in ("GET", "HEAD"):
                raise BadRequest("a pull has no body")
    return Request(method, target, headers)


def answer_status(head: bytes) -> int:
    """The status code in an answer's head (0 if it has none)."""
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@dataclass
class Front:
    """The front's state: where the store is, its storage (to see what it keeps), the flights."""

    store_host: str
    store_port: int
    root: Path  # the store's filesystem root (docker/registry/v2/... below it)
    flights: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    clients: int = 0
    leaders: int = 0  # requests that went to the store as their blob's only one in flight (for tests)
    push: PushSide | PushRelay | None = None  # the sessions' push registry: this host's, or the web host's
    pushes_only: bool = False  # the web host's listener for sandbox hosts' fronts: the push registry alone
    upstream: str | None = None  # the store's upstream (PLAYGROUND_REGISTRY_UPSTREAM), which the leader fills from
    fills: int = 0  # blobs kept with one upstream fetch (playground.registry.filling)
    upstream_paused_until: float = 0.0  # the loop's time until which filling is not tried (upstream unreachable)

    def kept(self, name: str, digest: str) -> bool:
        """Whether the store serves ``digest`` in repository ``name`` from its own disk (its link is there)."""
        return layer_link_path(self.root, name, digest).is_file()

    async def wait_kept(self, name: str, digest: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the store to keep the blob; whether it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.kept(name, digest):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: one request, answered, then closed."""
        self.clients += 1
        try:
            if self.clients > MAX_CLIENTS:
                msg = "The registry mirror is answering too many pulls at once; try again in a moment."
                writer.write(error_answer(503, "Service Unavailable", "TOOMANYREQUESTS", msg, "Retry-After: 5\r\n"))
                return
            try:
                first = await asyncio.wait_for(reader.readexactly(1), CLIENT_HEAD_TIMEOUT)
                if first == TLS_HANDSHAKE:
                    return  # an engine trying HTTPS first (registry:5050 is insecure): closed, it falls back to HTTP
                head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLIENT_HEAD_TIMEOUT)
                request = parse_head(head)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, BadRequest) as exc:
                msg = f"The registry mirror could not read this request ({exc.__class__.__name__})."
                writer.write(error_answer(400, "Bad Request", "UNSUPPORTED", msg))
                return
            if self.push is not None and self.push.claims(request):
                await self.push.serve(request, reader, writer)
                return
            if self.pushes_only:
                writer.write(error_answer(404, "Not Found", "UNSUPPORTED", PUSHES_ONLY))
                return
            decision = route(request.method, request.target)
            if decision.kind == "refuse":
                writer.write(decision.answer)
            elif decision.blob is None:
                REGISTRY_PULLS.labels("other").inc()  # manifests, tags, /v2/
                await self.relay(request, writer, drain=False)
            else:
                REGISTRY_PULLS.labels("blob").inc()
                await self.blob(request, decision.blob, writer)
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            self.clients -= 1
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()

    async def blob(self, request: Request, blob: tuple[str, str], writer: asyncio.StreamWriter) -> None:
        """A blob: at once if the store keeps it, else as the leader of its flight or after the leader."""
        flight = self.flights.get(blob)
        if flight is None and not self.kept(*blob):
            REGISTRY_BLOBS.labels("miss").inc()
            flight = self.flights[blob] = asyncio.Event()
            self.leaders += 1
            try:
                if await self.fill(*blob):  # kept with one upstream fetch: the store serves it from disk
                    await self.relay(request, writer, drain=False)
                else:
                    status = await self.relay(request, writer, drain=True)
                    if status == 200:  # the store fetched it; it keeps it a moment after answering
                        await self.wait_kept(*blob, LINK_WAIT)
            finally:
                del self.flights[blob]
                flight.set()
            return
        REGISTRY_BLOBS.labels("hit" if flight is None else "waited").inc()
        if flight is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.wait(), FLIGHT_WAIT)
        await self.relay(request, writer, drain=False)

    async def fill(self, name: str, digest: str) -> bool:
        """Keep blob ``digest`` of ``name`` in the storage with one upstream fetch, before the store is
        asked (:mod:`playground.registry.filling`); whether it is kept. Not tried without an upstream,
        nor for UPSTREAM_PAUSE seconds after the upstream could not be reached (an offline host's
        pulls pay for one failed connection a pause); on failure the store fetches it as before."""
        loop = asyncio.get_running_loop()
        if self.upstream is None or loop.time() < self.upstream_paused_until:
            return False
        try:
            await loop.run_in_executor(None, filling.fill, self.root, self.upstream, name, digest)
        except filling.FillError as exc:
            log.warning("%s of %s not kept from the upstream (%s); the store fetches it", digest, name, exc)
            if exc.unreachable:
                self.upstream_paused_until = loop.time() + UPSTREAM_PAUSE
            return False
        self.fills += 1
        return True

    async def relay(self, request: Request, writer: asyncio.StreamWriter, drain: bool) -> int:
        """Pass ``request`` to the store and its answer back; the answer's status (0 if none came).

        With ``drain`` the store's answer is read to its end even if the client goes away, so that
        the store finishes (and keeps) what it is fetching for the flight.
        """
        store = await connect_or_refuse(self.store_host, self.store_port, writer, "The registry mirror's store")
        if store is None:
            return 0
        store_reader, store_writer = store
        client_alive = True
        try:
            store_writer.write(request.for_store(f"{self.store_host}:{self.store_port}"))
            head = await asyncio.wait_for(store_reader.readuntil(b"\r\n\r\n"), STORE_TIMEOUT)
            status = answer_status(head)
            client_alive = await self._send(writer, head)
            while client_alive or drain:
                chunk = await asyncio.wait_for(store_reader.read(CHUNK), STORE_TIMEOUT)
                if not chunk:
                    break
                if client_alive:
                    client_alive = await self._send(writer, chunk)
            return status
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning(
                "%s %s: the store's answer broke off (%s)", request.method, request.target, exc.__class__.__name__
            )
            return 0
        finally:
            store_writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, data: bytes) -> bool:
        """Write ``data`` to the client with backpressure; False if it has gone away."""
        try:
            writer.write(data)
            await writer.drain()
            return True
        except (ConnectionError, OSError):
            return False


SWEEP_INTERVAL = 10.0  # seconds between looks for ended sessions' namespaces and unlinked blobs
BODY_TIMEOUT = 60.0  # seconds a pushing client may go without sending any of its body


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request's body may have, and the answer (given its length) when it has more."""

    most: int
    refusal: Callable[[int], bytes]


@dataclass
class PushSide:
    """The sessions' push registry behind the front: where it listens, its storage, the quota, and
    ``password(namespace)``, the password of the namespace's active session (None: no such session).

    Writes (uploads, manifests, deletes) are counted; :meth:`sweep` collects unlinked blobs only
    while none is in flight, and holds new ones back (``gate``) for as long as it takes."""

    host: str
    port: int
    root: Path
    quota: int
    password: Callable[[str], Awaitable[str | None]]
    writes: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    collected: int = 0  # bytes freed by sweeps (for tests and the log)
    mirror: Path | None = None  # the mirror's storage, whose layers a push may link (push.adopt)

    def __post_init__(self) -> None:
        self.gate.set()

    @staticmethod
    def claims(request: Request) -> bool:
        """Whether ``request`` is for the push registry rather than the mirror."""
        path = request.target.split("?", 1)[0]
        if push.push_namespace(path) is not None:
            return True
        if path == "/v2/" or path.startswith("/v2/_catalog"):
            host = next((v for k, v in request.headers if k.lower() == "host"), "")
            return push.basic_credentials(request.headers) is not None or host.rsplit(":", 1)[0] == push.PUSH_NAME
        return False

    async def caller(self, request: Request) -> push.Caller:
        """Who the request's Basic credentials prove it is."""
        credentials = push.basic_credentials(request.headers)
        if credentials is None:
            return push.Caller(None)
        user, password = credentials
        if not push.NAMESPACE.fullmatch(user):
            return push.Caller(None, True, f"{user!r} is not a session's registry user; see your session's page.")
        expected = await self.password(user)
        if expected is None:
            return push.Caller(None, True, f"There is no active session {user}: it has ended, or the user is mistyped.")
        if not hmac.compare_digest(expected, password):
            return push.Caller(None, True, f"Wrong password for {user}; copy it from your session's page.")
        return push.Caller(user)

    async def serve(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request for the push registry: refused, or passed on with its body within the quota."""
        host = next((v for k, v in request.headers if k.lower() == "host"), push.PUSH_NAME)
        caller = await self.caller(request)
        decision = push.decide(request.method, request.target, caller, host)
        if decision.kind == "refuse":
            writer.write(decision.answer)
            return
        asked = push.blob_asked(request.method, request.target)
        if asked is not None and self.mirror is not None:
            await self.adopt(*asked)
        if not decision.write:
            await self.relay(request, reader, writer, None)
            return
        await self.gate.wait()
        self.writes += 1
        try:
            limit = BodyLimit(push.MANIFEST_LIMIT, lambda sent: push.denied(push.MANIFEST_TOO_BIG))
            if decision.write in ("start", "data"):
                assert caller.namespace is not None
                used = await asyncio.to_thread(push.usage, self.root, caller.namespace)
                if decision.write == "start" and used >= self.quota:
                    writer.write(push.denied(push.over_quota(used, 0, self.quota)))
                    return
                limit = BodyLimit(self.quota - used, lambda sent: push.denied(push.over_quota(used, sent, self.quota)))
            await self.relay(request, reader, writer, limit)
        finally:
            self.writes -= 1

    async def adopt(self, repository: str, digest: str) -> None:
        """Before docker's ``HEAD`` of a layer it is about to push: link the layer from the mirror's
        storage if the mirror holds it and the namespace's quota has room (push.adopt); counted as
        a write, so that no sweep runs between the blob and its link."""
        assert self.mirror is not None
        size = await asyncio.to_thread(push.mirrored_size, self.mirror, self.root, repository, digest)
        if not size:
            return
        await self.gate.wait()
        self.writes += 1
        try:
            used = await asyncio.to_thread(push.usage, self.root, repository.split("/", 1)[0])
            if used + size <= self.quota and await asyncio.to_thread(
                push.adopt, self.mirror, self.root, repository, digest
            ):
                log.info(
                    "%s: linked the mirror's %s (%s) instead of an upload", repository, digest[:19], push.human(size)
                )
        finally:
            self.writes -= 1

    async def relay(
        self,
        request: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limit: BodyLimit | None,
    ) -> None:
        """Pass ``request`` and its body to the push registry, and its answer back. A body longer than
        ``limit`` allows (what is left of the quota, for an upload) is cut off, what the upload wrote
        removed, and the client given ``limit``'s refusal once it has sent all of it."""

        async def cut_off() -> None:
            await asyncio.to_thread(push.remove_upload, self.root, request.target)

        await pass_on(request, reader, writer, (self.host, self.port, "The session registry"), limit, cut_off)

    async def sweep(self) -> None:
        """Remove the namespaces of sessions that are no longer active, then, if no write is in
        flight, the blobs no repository links (holding writes back meanwhile)."""
        removed = []
        for namespace in push.namespaces(self.root):
            if await self.password(namespace) is None:
                await asyncio.to_thread(push.remove_namespace, self.root, namespace)
                removed.append(namespace)
        if removed:
            log.info("removed the pushed images of ended sessions: %s", ", ".join(removed))
        if self.writes:
            return  # next time
        self.gate.clear()
        try:
            freed = await asyncio.to_thread(push.collect, self.root)
        finally:
            self.gate.set()
        if freed:
            self.collected += freed
            log.info("freed %s of blobs no session's repository links", push.human(freed))

    async def sweep_forever(self, interval: float = SWEEP_INTERVAL) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a database or filesystem hiccup: the next sweep tries again
                log.exception("sweeping the push registry's storage failed")
            await asyncio.sleep(interval)


@dataclass
class PushRelay:
    """A sandbox host's way to the sessions' push registry, which is the web host's (docs/hosts.md):
    each request :meth:`PushSide.claims` goes on as it came to the web host's front at ``host:port``
    (its PLAYGROUND_REGISTRY_HOSTS_LISTEN), which checks its credentials and quota and answers."""

    host: str
    port: int
    context: ssl.SSLContext | None = None  # TLS, checking the web host's registry certificate (tls.authority_context)
    claims = staticmethod(PushSide.claims)

    async def serve(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        where = (self.host, self.port, "The session registry (on the site's web host)")
        await pass_on(request, reader, writer, where, None, None, self.context)


async def pass_on(
    request: Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    registry: tuple[str, int, str],
    limit: BodyLimit | None,
    cut_off: Callable[[], Awaitable[None]] | None,
    context: ssl.SSLContext | None = None,
) -> None:
    """Pass ``request`` and its body to the registry at ``registry`` (host, port, and what it is, for
    the 503 when it does not answer; over TLS with ``context``), and its answer back. A body longer
    than ``limit`` allows is cut off, ``cut_off`` awaited, and the client given ``limit``'s refusal
    once it has sent all of it."""
    length, chunked = body_framing(request.headers)
    host, port, what = registry
    store = await connect_or_refuse(host, port, writer, what, context)
    if store is None:
        return
    store_reader, store_writer = store
    try:
        framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {length}\r\n"
        head = request.for_store(f"{host}:{port}")
        store_writer.write(head[:-2] + framing.encode() + b"\r\n")
        sent, too_big = 0, False
        async for piece in body_pieces(reader, length, chunked):
            sent += len(piece)
            if too_big:
                continue  # read to its end, so the client reads our answer
            if limit is not None and sent > limit.most:
                too_big = True  # the store sees the body end early and drops the request
                store_writer.write_eof()
                continue
            store_writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await store_writer.drain()
        if too_big:
            with contextlib.suppress(OSError, TimeoutError, asyncio.LimitOverrunError):
                await asyncio.wait_for(store_reader.read(), STORE_TIMEOUT)  # the store is done with it
            assert limit is not None and cut_off is not None
            await cut_off()
            writer.write(limit.refusal(sent))
            return
        if chunked:
            store_writer.write(b"0\r\n\r\n")
        head = await asyncio.wait_for(store_reader.readuntil(b"\r\n\r\n"), STORE_TIMEOUT)
        writer.write(head)
        while chunk := await asyncio.wait_for(store_reader.read(CHUNK), STORE_TIMEOUT):
            writer.write(chunk)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, OSError) as exc:
        log.warning("%s %s: the push broke off (%s)", request.method, request.target, exc.__class__.__name__)
    finally:
        store_writer.close()


async def connect_or_refuse(
    host: str, port: int, writer: asyncio.StreamWriter, what: str, context: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection to the registry on ``host``:``port`` (over TLS with ``context``, whose certificate
    must name ``host``); None, after answering the client 503 ("``what`` is not answering"), when it
    cannot be made. A certificate refused is also logged, for the operator."""
    try:
        opening = asyncio.open_connection(
            host, port, limit=HEAD_LIMIT, ssl=context, server_hostname=host if context is not None else None
        )
        return await asyncio.wait_for(opening, CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, ssl.SSLError):
            log.warning("%s at %s:%d refused over TLS: %s (docs/hosts.md, hostcerts site)", what, host, port, exc)
        msg = f"{what} is not answering; try again in a moment."
        writer.write(error_answer(503, "Service Unavailable", "UNAVAILABLE", msg, "Retry-After: 5\r\n"))
        return None


def body_framing(headers: list[tuple[str, str]]) -> tuple[int, bool]:
    """(Content-Length, chunked) of a request: a length of 0 when it has neither."""
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    length = next((v for k, v in headers if k.lower() == "content-length"), "0")
    if not length.isdigit():
        raise BadRequest("a Content-Length that is not a number")
    return int(length), chunked


async def body_pieces(reader: asyncio.StreamReader, length: int, chunked: bool) -> AsyncIterator[bytes]:
    """The pieces of a request body: ``length`` bytes, or chunks (each chunk's data) until the last."""
    if not chunked:
        async for piece in _pieces(reader, length):
            yield piece
        return
    while True:
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), BODY_TIMEOUT)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while await asyncio.wait_for(reader.readuntil(b"\r\n"), BODY_TIMEOUT) != b"\r\n":
                pass  # trailers
            return
        async for piece in _pieces(reader, size):
            yield piece
        await asyncio.wait_for(reader.readexactly(2), BODY_TIMEOUT)


async def _pieces(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    """``size`` bytes of ``reader`` as they come; IncompleteReadError if it ends first."""
    left = size
    while left > 0:
        piece = await asyncio.wait_for(reader.read(min(left, CHUNK)), BODY_TIMEOUT)
        if not piece:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(piece)
        yield piece


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port``, bound even before ``host`` exists (IP_FREEBIND)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(front: Front, sock: socket.socket, *others: tuple[Front, socket.socket, ssl.SSLContext | None]) -> None:
    """Serve on ``sock`` (and each other front on its socket, over TLS with its context if any) until
    SIGTERM or SIGINT, sweeping the push registry's storage meanwhile if this host has it."""
    loop = asyncio.get_running_loop()
    servers = [
        await asyncio.start_server(each.serve_client, sock=where, limit=HEAD_LIMIT, ssl=context)
        for each, where, context in ((front, sock, None), *others)
    ]
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    sweeping = asyncio.create_task(front.push.sweep_forever()) if isinstance(front.push, PushSide) else None
    try:
        await stopped.wait()
    finally:
        for server in servers:
            server.close()
        if sweeping:
            sweeping.cancel()


def push_side(cfg: config.Config) -> PushSide | PushRelay | None:
    """The sessions' registry behind this host's front, said in the log: on the web host its own (with
    Django set up for the sessions' passwords); on a sandbox host, which has neither it nor the
    database, a relay to the web host's (docs/hosts.md), or None without PLAYGROUND_REGISTRY_PUSH_VIA."""
    pulls = f"passing pulls on {cfg.registry_mirror} to the store on 127.0.0.1:{cfg.registry_store_port}"
    if cfg.role == "sandbox-host":
        via = cfg.registry_push_via
        if via is None:
            log.info("%s, sessions' pushes nowhere (PLAYGROUND_REGISTRY_PUSH_VIA is empty)", pulls)
            return None
        log.info("%s, sessions' pushes to the web host's front at %s:%d over TLS", pulls, *via)
        return PushRelay(*via, context=tls.authority_context(hosts_authority(cfg.data_dir)))
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
    from django.conf import settings

    from playground.registry.paths import push_root
    from playground.registry.sessions import Passwords

    log.info("%s, sessions' pushes to 127.0.0.1:%d", pulls, cfg.registry_push_port)
    return PushSide(
        "127.0.0.1",
        cfg.registry_push_port,
        push_root(cfg.data_dir),
        cfg.registry_push_quota,
        Passwords(settings.SECRET_KEY),
        mirror=mirror_root(cfg.data_dir),
    )


def main() -> int:
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    cfg = config.load()
    host, port = cfg.registry_mirror.rsplit(":", 1)
    sock = listening_socket(host, int(port))
    hosts_listen = cfg.registry_hosts_listen
    hosts_sock = listening_socket(*hosts_listen) if hosts_listen else None
    try:  # the sandbox hosts' link: TLS with the web host's registry certificate (docs/hosts.md)
        hosts_tls = tls.registry_server_context(cfg.tls_dir) if hosts_listen and cfg.role != "sandbox-host" else None
    except ConfigError as exc:
        log.error(
            "%s. PLAYGROUND_REGISTRY_HOSTS_LISTEN is served over TLS: run 'manage.py hostcerts site' with it set", exc
        )
        return 1
    try:
        side = push_side(cfg)
    except ConfigError as exc:
        log.error("%s", exc)
        return 1

    async def run() -> None:
        front = Front("127.0.0.1", cfg.registry_store_port, mirror_root(cfg.data_dir), push=side)
        front.upstream = cfg.registry_upstream
        others = []
        if hosts_listen and hosts_sock is not None and isinstance(side, PushSide):  # sandbox hosts' pushes
            log.info("serving the sandbox hosts' pushes on %s:%d over TLS", *hosts_listen)
            pushes = Front("127.0.0.1", cfg.registry_store_port, front.root, push=side, pushes_only=True)
            others.append((pushes, hosts_sock, hosts_tls))
        await serve(front, sock, *others)

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
