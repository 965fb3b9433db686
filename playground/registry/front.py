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
  first one (the leader) goes to the store; those arriving while it is in flight wait until it has
  ended and the store has linked the blob into the repository (its ``link`` file under
  ``repositories/<name>/_layers``), then go to the store, which serves them from disk. A blob the
  store has linked already is passed at once. 50 sandboxes pulling one image thus cost the
  upstream what one pull costs.

LATER (issue #17): a push registry for sessions is routed through this front on
``/v2/<session namespace>/...``: :func:`route` is where that path is told apart.

Imports only the standard library, uvloop and :mod:`playground.config`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger("playground.registry.front")

IP_FREEBIND = 15  # linux/in.h: bind to an address the host does not have (yet)
HEAD_LIMIT = 16 * 1024  # bytes of a request's or an answer's head
CHUNK = 256 * 1024
CLIENT_HEAD_TIMEOUT = 30.0  # seconds a client may take to send its request's head
CONNECT_TIMEOUT = 5.0  # seconds the store may take to accept
STORE_TIMEOUT = 300.0  # seconds the store may go without sending anything (it may be fetching upstream)
FLIGHT_WAIT = 900.0  # seconds a request waits for the leader of its blob before going to the store anyway
LINK_WAIT = 30.0  # seconds the leader waits, after its answer, for the store to have kept the blob
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

PULLS_ONLY = (
    "This registry mirror only serves pulls (GET and HEAD of /v2/...); {what} is not possible here. "
    "To share an image, push it to a registry of your own."
)


def error_answer(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """An answer in Distribution's error format, which docker prints: ``{"errors": [{code, message}]}``."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        "Docker-Distribution-Api-Version: registry/2.0\r\n"
        f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


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
    # LATER: /v2/<session namespace>/... goes to the sessions' push registry, before this line.
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

    def kept(self, name: str, digest: str) -> bool:
        """Whether the store serves ``digest`` in repository ``name`` from its own disk (its link is there)."""
        algorithm, hexdigest = digest.split(":", 1)
        link = self.root / "docker/registry/v2/repositories" / name / "_layers" / algorithm / hexdigest / "link"
        return link.is_file()

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
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLIENT_HEAD_TIMEOUT)
                request = parse_head(head)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, BadRequest) as exc:
                msg = f"The registry mirror could not read this request ({exc.__class__.__name__})."
                writer.write(error_answer(400, "Bad Request", "UNSUPPORTED", msg))
                return
            decision = route(request.method, request.target)
            if decision.kind == "refuse":
                writer.write(decision.answer)
            elif decision.blob is None:
                await self.relay(request, writer, drain=False)
            else:
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
            flight = self.flights[blob] = asyncio.Event()
            self.leaders += 1
            try:
                status = await self.relay(request, writer, drain=True)
                if status == 200:  # the store fetched it; it keeps it a moment after answering
                    await self.wait_kept(*blob, LINK_WAIT)
            finally:
                del self.flights[blob]
                flight.set()
            return
        if flight is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.wait(), FLIGHT_WAIT)
        await self.relay(request, writer, drain=False)

    async def relay(self, request: Request, writer: asyncio.StreamWriter, drain: bool) -> int:
        """Pass ``request`` to the store and its answer back; the answer's status (0 if none came).

        With ``drain`` the store's answer is read to its end even if the client goes away, so that
        the store finishes (and keeps) what it is fetching for the flight.
        """
        try:
            store_reader, store_writer = await asyncio.wait_for(
                asyncio.open_connection(self.store_host, self.store_port, limit=HEAD_LIMIT), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            msg = "The registry mirror's store is not answering; try again in a moment."
            writer.write(error_answer(503, "Service Unavailable", "UNAVAILABLE", msg, "Retry-After: 5\r\n"))
            return 0
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


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port``, bound even before ``host`` exists (IP_FREEBIND)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(front: Front, sock: socket.socket) -> None:
    """Serve on ``sock`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(front.serve_client, sock=sock, limit=HEAD_LIMIT)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def main() -> int:
    import uvloop

    from playground import config
    from playground.registry.paths import mirror_root

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    cfg = config.load()
    host, port = cfg.registry_mirror.rsplit(":", 1)
    sock = listening_socket(host, int(port))
    log.info("passing pulls on %s to the store on 127.0.0.1:%d", cfg.registry_mirror, cfg.registry_store_port)
    uvloop.run(serve(Front("127.0.0.1", cfg.registry_store_port, mirror_root(cfg.data_dir)), sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
