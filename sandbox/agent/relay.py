"""``connect``: a TCP connection to a port of a sandbox, relayed through the agent's connection.

The port proxy of the site reaches a node of this host this way when the site runs on another
machine (docs/hosts.md): the sandbox's address is on this host's bridge, out of the site's reach.
The request ``{"op": "connect", "sandbox": id, "port": n}`` gets its reply once the agent is
connected to ``<sandbox address>:n``; from then on the agent's connection carries the bytes of that
TCP connection both ways, unframed, until either end closes. A port where nothing listens is
refused as ``not_listening``; a sandbox that does not answer within CONNECT_TIMEOUT as ``unreachable``.

The agent connects from the host, as the port proxy of a single box does: the walls stop what
sandboxes send, not what the host sends them.
"""

from __future__ import annotations

import asyncio
import contextlib

from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Request
from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError

CONNECT_TIMEOUT = 5.0
CHUNK = 256 * 1024


class Relay:
    """Serves ``connect`` for the sandboxes of ``registry``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def serve(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect to the port, reply, then relay both ways until either side ends; AgentError before
        the reply (``bad_request``, ``unknown_sandbox``, ``not_listening``, ``unreachable``)."""
        sandbox = self.registry.live(request, key="sandbox")
        port = request.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise AgentError("bad_request", f"port={port!r} is invalid; use 1 to 65535")
        if sandbox.network is None:
            raise AgentError("unreachable", f"sandbox {sandbox.sandbox_id} has no network")
        address = str(sandbox.network.address)
        try:
            node_reader, node_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, limit=CHUNK), CONNECT_TIMEOUT
            )
        except ConnectionRefusedError:
            raise AgentError("not_listening", f"nothing listens on port {port} of {sandbox.hostname}") from None
        except (OSError, TimeoutError) as exc:
            raise AgentError("unreachable", f"port {port} of {sandbox.hostname} does not answer: {exc}") from None
        writer.write(protocol.encode_reply({"address": address, "port": port}))
        try:
            await _both_ways(reader, writer, node_reader, node_writer)
        finally:
            node_writer.close()


async def _both_ways(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    node_reader: asyncio.StreamReader,
    node_writer: asyncio.StreamWriter,
) -> None:
    """Copy each side to the other; when one side ends its sending, the other is told (half close)
    and the copy the other way goes on; done when both ways are."""
    await asyncio.gather(_copy(reader, node_writer), _copy(node_reader, writer))


async def _copy(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    """Bytes of ``source`` to ``target``, each chunk once ``target`` took the one before (backpressure)."""
    try:
        while chunk := await source.read(CHUNK):
            target.write(chunk)
            await target.drain()
        if target.can_write_eof():
            target.write_eof()
        else:  # TLS: no half close; the end of one way ends the connection
            target.close()
    except (ConnectionError, RuntimeError):
        target.close()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await target.drain()
