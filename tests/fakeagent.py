"""Fake sandbox agents for the fast tests: the real wire protocol, no sandboxes.

:class:`FakeAgent` listens on a unix socket and answers with the frames of
:mod:`sandbox.wire.protocol`, as the real agent (:mod:`sandbox.agent.service`) does: one REQUEST
and one REPLY per connection, and after a successful ``attach`` a terminal stream. Its
"sandboxes" are created at once; the terminal of one echoes its input back as output (held while
the viewer paused), and records every frame it received, so tests can say what reached it. It
hands over no PTY (``"pty": true`` gets an ordinary stream, as from an agent that cannot).

Each subclass plays one way the real agent fails, in the manner of JupyterHub's mocking:
:class:`SlowAgent` is slow to create, :class:`NeverAgent` never answers ``create``,
:class:`DyingAgent` closes the connection in the middle of ``create``, :class:`BusyAgent`
refuses it as a full host does (``at_capacity``) and :class:`FreeingAgent` does so once, as a full
host whose slot frees up.

The agent runs its own event loop in a thread, so synchronous callers (Celery tasks, Django's
test client) and asynchronous ones (the terminal consumer) can both talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from sandbox.wire import protocol
from sandbox.wire.protocol import AgentError, Kind, ProtocolError

IMAGES = ("busybox", "debian")
DEFAULT_IMAGE = "busybox"
REQUEST_TIMEOUT = 10.0  # seconds the first frame of a connection may take, as the real agent allows
AT_CAPACITY = (
    "this host already runs its maximum of 1 sandboxes (PLAYGROUND_HOST_MAX_SANDBOXES); try again when a session ends"
)


class HangUp(Exception):
    """Raised by an operation to close the connection without a reply (the agent died)."""


@dataclass
class Viewer:
    """One attached connection: where echoes go, and what is held while it is paused."""

    writer: asyncio.StreamWriter
    paused: bool = False
    held: bytearray = field(default_factory=bytearray)

    def output(self, data: bytes) -> None:
        if self.paused:
            self.held += data
        elif not self.writer.is_closing():
            self.writer.write(protocol.encode(Kind.DATA, data))

    def pause(self, paused: bool) -> None:
        self.paused = paused
        if not paused and self.held:
            data, self.held = bytes(self.held), bytearray()
            self.output(data)


@dataclass
class FakeTerminal:
    """A sandbox's first shell: echoes input; ``frames`` is every frame received, in order."""

    frames: list[tuple[Kind, bytes]] = field(default_factory=list)
    viewers: list[Viewer] = field(default_factory=list)

    @property
    def input(self) -> bytes:
        """Every input byte received, in order."""
        return b"".join(payload for kind, payload in self.frames if kind == Kind.DATA)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """Every window size received, in order."""
        sizes = (json.loads(payload) for kind, payload in self.frames if kind == Kind.RESIZE)
        return [(size["cols"], size["rows"]) for size in sizes]

    def receive(self, viewer: Viewer, kind: Kind, payload: bytes) -> None:
        self.frames.append((kind, payload))
        if kind == Kind.DATA:
            for each in self.viewers:
                each.output(payload)
        elif kind in (Kind.PAUSE, Kind.RESUME):
            viewer.pause(kind == Kind.PAUSE)
        elif kind == Kind.RESIZE:
            size = protocol.decode_json(payload)
            if not isinstance(size.get("cols"), int) or not isinstance(size.get("rows"), int):
                raise ProtocolError("resize needs integer cols and rows")
        elif kind != Kind.TYPED:
            raise ProtocolError(f"frame kind {kind.name} is not allowed on a terminal stream")


@dataclass
class FakeSandbox:
    sandbox_id: str
    hostname: str
    image: str
    group: str | None = None
    address: str = "10.89.0.2"
    ports: list[int] = field(default_factory=list)  # what ``stats`` says listens in it; tests set it
    files: dict[str, bytes] = field(default_factory=dict)  # put_file and get_file: path -> bytes
    directories: set[str] = field(default_factory=lambda: {"/", "/root", "/tmp", "/etc"})
    disk_free: int = 1 << 30  # bytes an upload may have before put_file says disk_full
    scripts: list[str] = field(default_factory=list)  # what ``run`` was given, in order
    created: float = field(default_factory=time.time)
    terminal: FakeTerminal = field(default_factory=FakeTerminal)
    recorded: bool = False  # created with "record": true
    markers: list[str] = field(default_factory=list)  # what ``mark`` put into its recording, in order

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.sandbox_id,
            "hostname": self.hostname,
            "image": self.image,
            "created": self.created,
            "exited": False,
            "address": self.address,
            "group": self.group,
            "runtime_id": self.sandbox_id,
            "terminals": [0],
        }


class FakeAgent:
    """A working agent: creates sandboxes at once; their terminals echo. See the module's docstring."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.requests: list[dict[str, Any]] = []  # every request, in arrival order
        self.run_replies: dict[str, dict[str, Any]] = {}  # by hostname: what ``run`` answers there
        self.warm_reserved: dict[str, dict[str, int]] = {}  # by holder: what ``reserve_warm`` keeps
        self.warm_ready: dict[str, int] = {}  # by image: the ready pooled sandboxes ``warm`` reports (tests set it)
        self._created: dict[str, asyncio.Event] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()  # the open connections' ends
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=type(self).__name__, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @classmethod
    @contextlib.contextmanager
    def running(cls, socket_path: Path) -> Iterator[Self]:
        """The agent listening on ``socket_path`` for the duration of the block."""
        agent = cls(socket_path)
        agent._thread.start()
        try:
            agent._call(agent._listen())
            yield agent
        finally:
            agent._call(agent._close())
            agent._loop.call_soon_threadsafe(agent._loop.stop)
            agent._thread.join(5)
            agent._loop.close()

    def ops(self) -> list[str]:
        """The operation of every request so far, in order."""
        return [str(request.get("op")) for request in self.requests]

    def terminal(self, sandbox_id: str) -> FakeTerminal:
        """The terminal of a sandbox this agent created (KeyError if it did not)."""
        return self.sandboxes[sandbox_id].terminal

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._track, str(self.socket_path), limit=2 * protocol.MAX_PAYLOAD
        )

    async def _close(self) -> None:
        """Stop listening and end every connection. Each is aborted besides its handler cancelled:
        Python 3.11's wait_for loses a cancellation that comes as the request it waits for arrives
        (gh-86296), and the handler then streams a terminal to a client that is gone, never ending."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, answered as :meth:`sandbox.agent.service.Agent.handle` answers it."""
        try:
            frame = await asyncio.wait_for(protocol.read_frame(reader), REQUEST_TIMEOUT)
            if frame is None:
                return
            if frame[0] != Kind.REQUEST:
                raise ProtocolError("the first frame of a connection must be a request")
            request = protocol.decode_json(frame[1])
            self.requests.append(request)
            op = request.get("op")
            if op == "attach":
                await self._attach(request, reader, writer)
                return
            if op in ("put_file", "get_file", "get_tree"):
                await self._file(op, request, writer)
                return
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise AgentError("bad_request", f"unknown operation {op!r}")
            reply = await handler(request)
            writer.write(protocol.encode_reply(reply))
        except AgentError as exc:
            writer.write(protocol.encode_refusal(exc.code, exc.message))
        except (TimeoutError, ProtocolError) as exc:
            writer.write(protocol.encode_refusal("bad_request", str(exc)))
        except HangUp:
            writer.transport.abort()
            return
        except ConnectionError:
            return
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    # -- operations -------------------------------------------------------------------------
    async def op_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"sandboxes": len(self.sandboxes)}

    async def op_images(self, request: dict[str, Any]) -> dict[str, Any]:
        details = [
            {
                "name": name,
                "tag": f"playground/{name}:latest",
                "digest": "sha256:" + "0" * 64,
                "size": 1024 * 1024,
                "layers": 1,
                "created": "2026-01-01T00:00:00Z",
                "source": "fake",
                "quotas": {},
            }
            for name in IMAGES
        ]
        return {"images": list(IMAGES), "default": DEFAULT_IMAGE, "details": details}

    async def op_list(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"sandboxes": [sandbox.describe() for sandbox in self.sandboxes.values()], "warm": {}}

    async def op_reserve_warm(self, request: dict[str, Any]) -> dict[str, Any]:
        """Keeps the holder's sizes (none kept for ``{}`` or ttl 0) and answers as ``warm``; refuses
        what the real agent refuses for its type, and images it does not have."""
        holder, sizes, ttl = request.get("holder"), request.get("sizes"), request.get("ttl")
        if not isinstance(holder, str) or not isinstance(sizes, dict) or not isinstance(ttl, int):
            raise AgentError("bad_request", "reserve_warm needs a holder, sizes {image: count} and a ttl in seconds")
        kept = {image: count for image, count in sizes.items() if count > 0}
        for image in kept:
            if image not in IMAGES:
                raise AgentError("unknown_image", f"cannot reserve sandboxes of {image}: there is no such image")
        if kept and ttl > 0:
            self.warm_reserved[holder] = kept
        else:
            self.warm_reserved.pop(holder, None)
        return await self.op_warm(request)

    async def op_warm(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ready`` as the test set it, ``wanted`` the reservations summed, a host of 100 slots."""
        wanted: dict[str, int] = {}
        for sizes in self.warm_reserved.values():
            for image, count in sizes.items():
                wanted[image] = wanted.get(image, 0) + count
        room = 100 - len(self.sandboxes) - sum(self.warm_ready.values())
        return {"ready": dict(self.warm_ready), "wanted": wanted, "limit": 100, "room": room}

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        sandbox_id, hostname = _text(request, "id"), _text(request, "hostname")
        image = request.get("image", DEFAULT_IMAGE)
        if sandbox_id in self.sandboxes:
            return {"sandbox": self.sandboxes[sandbox_id].describe(), "created": False}
        if image not in IMAGES:
            raise AgentError("unknown_image", f"there is no image {image!r} on this host")
        group = request.get("group")
        address = f"10.89.0.{2 + len(self.sandboxes)}"
        sandbox = self.sandboxes[sandbox_id] = FakeSandbox(sandbox_id, hostname, str(image), group, address)
        sandbox.recorded = request.get("record") is True
        waiting = self._created.pop(sandbox_id, None)
        if waiting is not None:
            waiting.set()  # attachers waiting for it
        return {"sandbox": sandbox.describe(), "created": True}

    async def op_stats(self, request: dict[str, Any]) -> dict[str, Any]:
        """The shape of the real agent's ``stats``: fixed figures, ``ports`` as the test set them."""
        found = [self.sandboxes[i] for i in request.get("ids", []) if i in self.sandboxes]
        return {
            "sandboxes": {
                s.sandbox_id: {
                    "address": s.address,
                    "memory_bytes": 8 * 1024 * 1024,
                    "memory_limit_bytes": 512 * 1024 * 1024,
                    "cpu_seconds": 0.25,
                    "ports": sorted(s.ports),
                }
                for s in found
            }
        }

    async def op_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Records the script; answers ``run_replies[hostname]`` over a clean exit with no output."""
        sandbox = self.sandboxes.get(_text(request, "sandbox"))
        if sandbox is None:
            raise AgentError("unknown_sandbox", "no such sandbox on this host")
        sandbox.scripts.append(_text(request, "script"))
        reply = {"code": 0, "output": "", "truncated": False, "timed_out": False}
        return {**reply, **self.run_replies.get(sandbox.hostname, {})}

    async def op_mark(self, request: dict[str, Any]) -> dict[str, Any]:
        """Notes the marker of a recorded sandbox: ``{"marked": 1}`` (its one terminal), else 0."""
        sandbox = self.sandboxes.get(_text(request, "id"))
        if sandbox is None:
            raise AgentError("unknown_sandbox", "no such sandbox on this host")
        if not sandbox.recorded:
            return {"marked": 0}
        sandbox.markers.append(_text(request, "label"))
        return {"marked": 1}

    async def op_destroy(self, request: dict[str, Any]) -> dict[str, Any]:
        sandbox = self.sandboxes.pop(_text(request, "id"), None)
        for viewer in sandbox.terminal.viewers if sandbox else ():
            viewer.writer.close()
        return {"destroyed": sandbox is not None}

    async def _file(self, op: str, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        """``put_file``, ``get_file`` and ``get_tree`` with their descriptors, as the real agent's
        (:mod:`sandbox.agent.files`); the sandbox's files are a dict, relative paths go to /root,
        a path in ``sandbox.directories`` is a directory, and ``sandbox.disk_free`` bounds uploads."""
        sandbox = self.sandboxes.get(_text(request, "sandbox"))
        if sandbox is None:
            raise AgentError("unknown_sandbox", "no such sandbox on this host")
        path = _text(request, "path")
        if op == "get_tree":
            _send_with_fd(writer, *_tree(sandbox, path, request["limit"]))
            return
        path = path if path.startswith("/") else f"/root/{path}"
        if path in sandbox.directories:
            raise AgentError("is_directory", f"{path} is a directory")
        if op == "get_file":
            if path not in sandbox.files:
                raise AgentError("no_such_file", f"{path} does not exist")
            if len(sandbox.files[path]) > request["limit"]:
                raise AgentError("too_large", "the file is larger than the limit")
            memfd = os.memfd_create("fake-download")
            os.write(memfd, sandbox.files[path])
            os.lseek(memfd, 0, os.SEEK_SET)
            _send_with_fd(writer, protocol.encode_reply({"path": path, "size": len(sandbox.files[path])}), memfd)
            return
        read_end, write_end = os.pipe()
        _send_with_fd(writer, protocol.encode_reply({"send": True}), write_end)
        data = await asyncio.to_thread(_read_all, read_end)
        if len(data) > sandbox.disk_free:
            writer.write(protocol.encode_refusal("disk_full", "the sandbox's disk is full; nothing was written"))
            return
        sandbox.files[path] = data
        writer.write(protocol.encode_reply({"path": path, "size": len(data)}))

    async def _attach(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Reply, then stream the terminal until the client closes the connection."""
        sandbox_id = _text(request, "id")
        wait = request.get("wait", 0)
        if sandbox_id not in self.sandboxes and isinstance(wait, (int, float)) and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._created.setdefault(sandbox_id, asyncio.Event()).wait(), wait)
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None:
            raise AgentError("unknown_sandbox", f"no sandbox {sandbox_id} on this host")
        if request.get("terminal", 0) != 0:
            raise AgentError("unknown_terminal", f"sandbox {sandbox_id} has no terminal {request.get('terminal')}")
        writer.write(protocol.encode_reply({"sandbox": sandbox.describe(), "terminal": 0}))
        viewer = Viewer(writer)
        terminal = sandbox.terminal
        terminal.viewers.append(viewer)
        try:
            while (frame := await protocol.read_frame(reader)) is not None:
                terminal.receive(viewer, *frame)
        except (ProtocolError, ConnectionError):
            pass
        finally:
            terminal.viewers.remove(viewer)


class SlowAgent(FakeAgent):
    """Takes ``CREATE_SECONDS`` to create a sandbox (a cold start on a loaded host)."""

    CREATE_SECONDS = 0.5

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(self.CREATE_SECONDS)  # the point: a slow creation
        return await super().op_create(request)


class NeverAgent(FakeAgent):
    """Never answers ``create`` (a hung agent); the connection stays open until the client gives up."""

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        never: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        return await never


class DyingAgent(FakeAgent):
    """Closes the connection in the middle of ``create``, without a reply (killed, or crashed)."""

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        raise HangUp()


class BusyAgent(FakeAgent):
    """Refuses ``create`` as a host at its PLAYGROUND_HOST_MAX_SANDBOXES does: ``at_capacity``."""

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        raise AgentError("at_capacity", AT_CAPACITY)


class FreeingAgent(FakeAgent):
    """A full host whose slot frees up: refuses the first ``create`` with ``at_capacity``, then creates.
    As the real agent, it wakes the attachers waiting for the sandbox at the refusal too."""

    refused = False

    async def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.refused:
            self.refused = True
            waiting = self._created.pop(_text(request, "id"), None)
            if waiting is not None:
                waiting.set()
            raise AgentError("at_capacity", AT_CAPACITY)
        return await super().op_create(request)


def _tree(sandbox: FakeSandbox, directory: str, limit: int) -> tuple[bytes, int]:
    """``get_tree``'s reply and memfd: a tar of the sandbox's files under ``directory`` (paths
    ``./...``, regular files of mode 0644), refused as the real agent refuses."""
    if directory not in sandbox.directories:
        raise AgentError("no_such_file", f"{directory} does not exist")
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        for path, data in sorted(sandbox.files.items()):
            if path.startswith(directory.rstrip("/") + "/"):
                member = tarfile.TarInfo("./" + path.removeprefix(directory.rstrip("/") + "/"))
                member.size, member.mode = len(data), 0o644
                tar.addfile(member, io.BytesIO(data))
    if len(packed.getvalue()) > limit:
        raise AgentError("too_large", f"the tar of {directory} is larger than the limit of {limit} bytes")
    memfd = os.memfd_create("fake-tree")
    os.write(memfd, packed.getvalue())
    os.lseek(memfd, 0, os.SEEK_SET)
    return protocol.encode_reply({"path": directory, "size": len(packed.getvalue())}), memfd


def _send_with_fd(writer: asyncio.StreamWriter, data: bytes, fd: int) -> None:
    """The first bytes of the connection with ``fd`` attached (SCM_RIGHTS); ``fd`` is closed here."""
    with socket.socket(fileno=os.dup(writer.get_extra_info("socket").fileno())) as same:
        socket.send_fds(same, [data], [fd])
    os.close(fd)


def _read_all(fd: int) -> bytes:
    """What the pipe ``fd`` holds until its end; closes it."""
    with os.fdopen(fd, "rb") as source:
        return source.read()


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise AgentError("bad_request", f"{key}={value!r} is invalid; send a non-empty string")
    return value
