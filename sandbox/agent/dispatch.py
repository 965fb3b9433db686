"""The agent's socket: one request per connection, each operation name served by one handler.

:class:`Dispatcher` reads the first frame (a REQUEST, within REQUEST_TIMEOUT), finds its ``op``
in the table :attr:`Dispatcher.ops` (``attach`` goes to the terminal stream instead) and writes
one REPLY: ``{"ok": true, ...}``, or ``{"ok": false, "error": code, "message": ...}`` for a
refused request (AgentError), a malformed one (``bad_request``) or a failure of the agent
(``agent_failure``, logged). The operations and their
replies are listed in docs/architecture.md ("The sandbox agent").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sandbox.agent.attach import Attacher
from sandbox.agent.files import Files
from sandbox.agent.hangup import while_client_waits
from sandbox.agent.recordings import Recordings
from sandbox.agent.records import Sandbox
from sandbox.agent.recovery import Recovery
from sandbox.agent.registry import Registry
from sandbox.agent.relay import Relay
from sandbox.agent.requestfields import Reply, Request
from sandbox.agent.reserving import WarmReservations
from sandbox.agent.sandboxes import Sandboxes
from sandbox.agent.stats import Stats
from sandbox.agent.tabs import Tabs
from sandbox.agent.warmpool import WarmPool
from sandbox.images.store import ImageStore
from sandbox.runtime import labscripts
from sandbox.runtime.files import FileMover
from sandbox.runtime.labscripts import CommandRunner
from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError, Kind, ProtocolError

log = logging.getLogger("sandbox.agent")

REQUEST_TIMEOUT = 10.0
# Operations whose work is only worth finishing for a client still waiting (sandbox.agent.hangup): a
# lab script (which may wait up to 30 s for its turn, then run up to 300 s); the file ops watch for
# it themselves (sandbox.agent.files). Others (create, destroy...) always finish.
ENDED_WITH_THEIR_CLIENT = frozenset({"run"})

Handler = Callable[[Request], Awaitable[Reply]]


@dataclass(eq=False)
class Dispatcher:
    """Serves the connections to the agent's socket."""

    default_image: str
    registry: Registry
    warm: WarmPool[Sandbox]
    images: ImageStore
    commands: CommandRunner
    sandboxes: Sandboxes
    tabs: Tabs
    recovery: Recovery
    attacher: Attacher
    stats: Stats
    recordings: Recordings
    reservations: WarmReservations
    ops: dict[str, Handler] = field(init=False)  # every operation but attach and the file ops, by name
    files: Files = field(init=False)  # put_file, get_file, get_tree: their bytes go by file descriptor
    relay: Relay = field(init=False)  # connect: a sandbox's port, relayed through the connection

    def __post_init__(self) -> None:
        self.files = Files(self.registry, FileMover(self.commands))
        self.relay = Relay(self.registry)
        self.ops = {
            "ping": self.ping,
            "images": self.list_images,
            "create": self.sandboxes.create,
            "destroy": self.sandboxes.destroy_request,
            "list": self.list_sandboxes,
            "reconcile": self.reconcile,
            "open_terminal": self.tabs.open,
            "terminals": self.tabs.terminals,
            "close_terminal": self.tabs.close,
            "run": self.run,
            "stats": self.stats.stats,
            "mark": self.recordings.mark,
            "reserve_warm": self.reservations.reserve,
            "warm": self.reservations.status,
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: bool = False) -> None:
        """Serve one connection: a request and its reply, or an ``attach`` stream.

        ``remote``: the connection is the site's, over TCP (:mod:`sandbox.wire.tls`), which carries
        no file descriptors: an ``attach`` streams its terminal through the agent whatever it asks,
        and the file operations carry their bytes on the connection (:mod:`sandbox.agent.files`).
        """
        try:
            frame = await asyncio.wait_for(protocol.read_frame(reader), REQUEST_TIMEOUT)
            if frame is None:
                return
            kind, payload = frame
            if kind != Kind.REQUEST:
                raise ProtocolError("the first frame of a connection must be a request")
            request = protocol.decode_json(payload)
            op = request.get("op")
            if op == "attach":
                await self.attacher.attach(request, reader, writer, lend=not remote)
                return
            if op == "connect":
                await self.relay.serve(request, reader, writer)
                return
            if op in ("put_file", "get_file", "get_tree"):
                await self.files.serve(op, request, reader, writer, tcp=remote)
                return
            handler = self.ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise AgentError("bad_request", f"unknown operation {op!r}")
            if op in ENDED_WITH_THEIR_CLIENT:
                try:
                    reply = await while_client_waits(handler(request), reader)
                except ConnectionError:
                    log.info("%s in %s ended: its client closed the connection", op, request.get("sandbox"))
                    raise
            else:
                reply = await handler(request)
            writer.write(protocol.encode_reply(reply))
        except AgentError as exc:
            writer.write(protocol.encode_refusal(exc.code, exc.message))
        except (TimeoutError, ProtocolError) as exc:
            log.warning("bad request on agent socket: %s", exc or "timeout")
            writer.write(protocol.encode_refusal("bad_request", str(exc)))
        except ConnectionError:
            pass
        except Exception:
            log.exception("request failed")
            writer.write(protocol.encode_refusal("agent_failure", "the sandbox agent failed; see its log"))
        finally:
            try:
                await writer.drain()
                writer.close()
            except (ConnectionError, RuntimeError):
                pass

    async def ping(self, request: Request) -> Reply:
        """How many sandboxes the agent tracks."""
        return {"sandboxes": len(self.registry.sandboxes)}

    async def list_images(self, request: Request) -> Reply:
        """Names (ready or built on first use), the default, and the metadata of each ready image."""
        ready = await asyncio.to_thread(self.images.list)
        return {
            "images": self.images.names(),
            "default": self.default_image,
            "details": [image.describe() for image in ready],
        }

    async def list_sandboxes(self, request: Request) -> Reply:
        """Every tracked sandbox, and the ready pooled ones per image."""
        return {
            "sandboxes": [s.describe() for s in self.registry.sandboxes.values()],
            "warm": {image: len(ready) for image, ready in self.warm.ready.items()},
        }

    async def reconcile(self, request: Request) -> Reply:
        """Reconcile now: ``{"removed": [...]}``."""
        return {"removed": await self.recovery.reconcile()}

    async def run(self, request: Request) -> Reply:
        """Run a script inside a live sandbox (lab checks): see :mod:`sandbox.runtime.labscripts`."""
        sandbox = self.registry.live(request, key="sandbox")
        script, timeout, limit = labscripts.parse_request(request)
        result = await self.commands.run(sandbox.runtime_id, script, timeout, limit)
        return result.reply()
