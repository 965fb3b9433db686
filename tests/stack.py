"""A whole Playground (Redis, agent, Daphne, Celery worker and beat) started by the real
launcher in a private data directory, for integration and end-to-end tests.

Each stack has its own ports, Redis, data directory, cgroup parent and sandbox network, so tests never touch
a `make run` going on beside them. Only loopback addresses are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from sandbox.host import cgroups, mounts
from sandbox.keeper.client import KeeperClient, KeeperError
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from sandbox.settings import load as load_config
from sandbox.wire.shared_settings import keeper_socket
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent

# How each part the launcher starts shows in its command line (setpriv execs the part itself).
PARTS = {
    "agent": ("sandbox.agent",),
    "keeper": ("sandbox.keeper",),
    "daphne": ("playground.webserver",),
    "ports": ("playground.ports",),
    "worker": ("celery", "worker"),
    "beat": ("celery", "beat"),
    "redis": ("redis-server",),
    "registry": ("playground.registry.store",),
    "registry-front": ("playground.registry.front",),
    "registry-push": ("playground.registry.pushstore",),
}


# Test ports come from below the kernel's ephemeral range, so no outgoing connection's source port
# can take one between its choice and the moment its server binds it (as happened to a Daphne).
TEST_PORTS = range(20000, 32768)
# Each test port this process has taken, as a bound abstract unix socket named after it (the same
# claim as the subnets': one process at a time across the host, freed when the process ends).
_port_claims: list[socket.socket] = []


def free_port() -> int:
    """A loopback TCP port nothing listens on, below the ephemeral range, that no other test process
    on this host holds; this process's until it ends."""
    start = random.randrange(len(TEST_PORTS))
    for step in range(len(TEST_PORTS)):
        port = TEST_PORTS[(start + step) % len(TEST_PORTS)]
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0playground-test-port-{port}")
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:  # another process holds it, or something listens or is bound there
            claim.close()
            continue
        _port_claims.append(claim)
        return port
    raise RuntimeError(f"every test port in {TEST_PORTS.start}-{TEST_PORTS.stop - 1} is taken")


# The /24s that stacks take their sandbox subnet from: 10.200.0.0 to 10.249.255.0.
STACK_SUBNETS = 50 * 256
# Each subnet this process has taken, as a bound abstract unix socket named after it: the kernel lets
# one socket alone have a name, across every process of the host, and frees it when its process ends.
_subnet_claims: list[socket.socket] = []


def claim_subnet(hint: int) -> str:
    """A /24 for a stack's sandboxes that no other stack of any test run on this host holds and that
    the host does not route yet, tried from the ``hint``-th of the 12 800 on.

    It stays this process's until the process ends (a run starts a few hundred stacks at most), so
    two pytest processes side by side, or a stack restarted with the same settings, never meet on
    one bridge subnet. RuntimeError if every one is taken.
    """
    routed = host_routes()
    for step in range(STACK_SUBNETS):
        index = (hint + step) % STACK_SUBNETS
        subnet = ipaddress.IPv4Network(f"10.{200 + index // 256}.{index % 256}.0/24")
        if any(subnet.overlaps(network) for network in routed):
            continue
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0playground-test-subnet-{subnet.network_address}")
        except OSError:  # another process holds it
            claim.close()
            continue
        _subnet_claims.append(claim)
        return str(subnet)
    raise RuntimeError("every stack subnet in 10.200.0.0-10.249.255.0 is taken or routed; see 'ip -4 route'")


def hostcerts(tls_dir: Path, *args: str, **settings: str) -> None:
    """``manage.py hostcerts ARGS`` with PLAYGROUND_TLS_DIR=tls_dir and ``settings``, as an operator
    runs it with the site's settings (docs/hosts.md)."""
    env = dict(os.environ, PLAYGROUND_TLS_DIR=str(tls_dir), **settings)
    subprocess.run([sys.executable, "manage.py", "hostcerts", *args], cwd=REPO, env=env, check=True, timeout=60)


def host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of the host's main routing table (the agent refuses a subnet overlapping one)."""
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "main"], capture_output=True, text=True)
    routes = json.loads(out.stdout or "[]") if out.returncode == 0 else []
    found = []
    for route in routes:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.IPv4Network(route.get("dst", ""), strict=False))
    return found


@contextlib.contextmanager
def forwarding_on(interface: str) -> Iterator[None]:
    """IPv4 forwarding on for packets arriving on ``interface`` only; its setting is put back after.

    The host-wide ``net.ipv4.ip_forward`` stays as found (off on a fresh Debian host, on where
    Docker runs): the kernel checks the forwarding setting of the interface a packet came in on,
    so a test can let routed packets reach the nft forward hook of its own bridge alone.
    """
    setting = Path(f"/proc/sys/net/ipv4/conf/{interface}/forwarding")
    found = setting.read_text()
    setting.write_text("1\n")
    try:
        yield
    finally:
        if setting.exists():  # gone with the interface if the test removed it
            setting.write_text(found)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stack:
    """A running Playground; ``stop()`` is Ctrl-C."""

    data_dir: Path
    port: int
    cgroup_parent: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    keep_files: bool = False  # keep the directory (and its log) even after a clean stop
    log_path: Path = field(init=False)
    started_sessions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "launcher.log"

    @classmethod
    def create(cls, **settings: str) -> Stack:
        data_dir = Path(tempfile.mkdtemp(prefix="pg-stack-", dir="/tmp"))
        data_dir.chmod(0o755)
        port = free_port()
        parent = f"playground-test-{os.getpid()}-{port}"
        # No warm pool unless a test asks for one, so that a clean host has no sandbox at all; the
        # busybox image (made in a second) as the default unless a test names another, so that a
        # stack does not wait for the docker image (PLAYGROUND_DEFAULT_IMAGE's default) to be built.
        # Its own bridge, netns/veth names and nft table, on a /24 no other stack on the host holds.
        # The registry mirror: its store on a loopback port of its own, read-only unless a test
        # names an upstream (never Docker Hub: tests reach nothing outside), its front on the gateway.
        # Id ranges are claimed host-wide by every agent of one id base, so a stack's default pool
        # (its limit and some slack: 130 for the image tests' 110) could be taken by the sandboxes
        # of the other stacks running beside it (or left by a killed one): a pool of 2000 instead.
        registry = {
            "PLAYGROUND_REGISTRY_STORE_PORT": str(free_port()),
            "PLAYGROUND_REGISTRY_PUSH_PORT": str(free_port()),
            "PLAYGROUND_REGISTRY_PORT": str(free_port()),
            "PLAYGROUND_REGISTRY_UPSTREAM": "none",
        }
        network = {
            "PLAYGROUND_NETWORK_NAME": f"t{port:05d}",
            "PLAYGROUND_SANDBOX_SUBNET": claim_subnet(port),
        }
        env = dict(
            os.environ,
            PLAYGROUND_DATA_DIR=str(data_dir),
            PLAYGROUND_PORT=str(port),
            PLAYGROUND_PORTS_PORT=str(free_port()),  # the port links' proxy
            PLAYGROUND_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
            PLAYGROUND_CGROUP_PARENT=parent,
            **{
                **network,
                **registry,
                "PLAYGROUND_WARM_POOL": "0",
                "PLAYGROUND_DEFAULT_IMAGE": "busybox",
                "PLAYGROUND_SANDBOX_RANGES": "2000",
                **settings,
            },
        )
        return cls(data_dir, port, parent, env)

    @classmethod
    @contextlib.contextmanager
    def running(cls, **settings: str) -> Iterator[Stack]:
        """A started stack for the ``with`` block; afterwards the sessions its tests started are
        ended and it is stopped (Ctrl-C; see ``stop``)."""
        stack = cls.create(**settings)
        try:
            stack.start()  # inside: a launcher that started but never got ready is stopped too
            yield stack
        finally:
            stack.end_started_sessions()
            stack.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports_port(self) -> int:
        """Where the stack's port proxy listens (PLAYGROUND_PORTS_PORT)."""
        return int(self.env["PLAYGROUND_PORTS_PORT"])

    def start(self, timeout: float = 90) -> None:
        """Start the launcher and wait until it says "Playground is running"; raises RuntimeError
        if it exits first, AssertionError (with its log) if it is not ready within ``timeout``."""
        with open(self.log_path, "ab") as log:  # the launcher keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "playground.launcher"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc

        def ready() -> bool:
            if b"Playground is running" in self.log_path.read_bytes():
                return True
            if proc.poll() is not None:
                raise RuntimeError(f"launcher exited {proc.returncode}:\n{self.log_tail()}")
            return False

        eventually(ready, "the launcher says 'Playground is running'", timeout, 0.2, explain=self.log_tail)

    def stop(self, timeout: float = 60, keep: bool = False) -> int:
        """Ctrl-C the launcher and wait for it; returns its exit status.

        After a clean stop the stack's directory is removed unless ``keep`` or ``keep_files``.
        """
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise RuntimeError(f"launcher did not stop in {timeout}s:\n{self.log_tail()}")
        if not (keep or self.keep_files) and self.proc.returncode == 0 and not mounts.mounts_under(self.data_dir):
            shutil.rmtree(self.data_dir, ignore_errors=True)  # kept, with its log, when anything went wrong
        return self.proc.returncode

    def restart_part(self, part: str, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
        """Send ``sig`` to the running ``part`` and wait until the launcher runs a new one; its pid."""
        old = self.pid_of(part)
        assert old is not None, f"{part} is not running:\n{self.log_tail()}"
        os.kill(old, sig)

        def new_pid() -> int:  # 0 until the launcher runs a new one
            pid = self.pid_of(part)
            return pid if pid is not None and pid != old else 0

        return eventually(
            new_pid,
            f"the launcher runs a new {part} (the old one was pid {old})",
            timeout,
            explain=self.log_tail,
        )

    def kept_terminals(self) -> set[str]:
        """The keys of the terminals this stack's keeper holds: a sandbox's runtime id for its first
        terminal, ``<runtime id>/<n>`` for a tab; none while the keeper does not answer (restarting)."""
        try:
            return KeeperClient(keeper_socket(self.data_dir / "run" / "agent.sock")).keys()
        except KeeperError:
            return set()

    def pid_of(self, part: str) -> int | None:
        """The pid of the launcher's running ``part`` (a key of PARTS), or None if it is not running.

        Only the launcher's own children count (setpriv execs each part), so a part's helpers,
        such as Celery's pool processes with the worker's command line, are never taken for it.
        """
        assert self.proc is not None
        return next((pid for pid in _children(self.proc.pid) if _is_part(pid, PARTS[part])), None)

    def pids_of(self, part: str) -> list[int]:
        """The pids of every running ``part`` the launcher started (several web servers, say)."""
        assert self.proc is not None
        return [pid for pid in _children(self.proc.pid) if _is_part(pid, PARTS[part])]

    def service_processes(self) -> list[str]:
        """Live processes started for this stack (their environment names its data directory):
        the launcher, its parts and their helpers; not the sandboxes."""
        marker = f"PLAYGROUND_DATA_DIR={self.data_dir}\0".encode()
        found = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                environ = (proc_dir / "environ").read_bytes()
                status = (proc_dir / "status").read_text()
            except OSError:
                continue
            if marker in environ + b"\0" and "\nState:\tZ" not in status:
                found.append(proc_dir.name)
        return sorted(found)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(the stack's directory was removed after a clean stop)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- HTTP ----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers), exc.read())

    def start_session(self, **body: Any) -> dict[str, Any]:
        response = self.request("POST", "/api/sessions/", body)
        assert response.status == 201, response.body
        self.started_sessions.append(response.json())
        return response.json()

    def end_started_sessions(self) -> None:
        """End every session the tests started here (DELETE is repeatable), e.g. after a failure."""
        while self.started_sessions:
            session = self.started_sessions.pop()
            self.request(
                "DELETE", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
            )

    def end_every_session(self) -> None:
        """End every live session of this stack, also those a browser started (``manage.py endsessions``)."""
        self.manage("endsessions", "--reason", "deleted")

    def manage(self, *args: str, stdin: str | None = None, **env: str) -> str:
        """Run ``manage.py *args`` as this stack's web user, with its settings (``stdin`` its standard
        input); its output."""
        web_user = self.env.get("PLAYGROUND_WEB_USER", "playground")
        environ = dict(self.env, HOME=str(self.data_dir / "web"), DJANGO_SETTINGS_MODULE="playground.settings", **env)
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=environ,
            user=web_user,
            group=pwd.getpwnam(web_user).pw_gid,  # as the launcher runs it: the agent's socket is this group's
            extra_groups=[],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed: {result.stdout}{result.stderr}"
        return result.stdout

    def shown(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as the API shows it to its visitor (GET with the session's key)."""
        response = self.request(
            "GET", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
        )
        assert response.status == 200, f"GET of session {session['id']}: {response.status} {response.body!r}"
        return response.json()

    def end_session(self, session: dict[str, Any]) -> None:
        response = self.request(
            "DELETE", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
        )
        assert response.status == 204, response.body

    def terminal_url(self, session: dict[str, Any], key: str | None = None, instance: int = 0) -> str:
        path = session["instances"][instance]["terminal"]
        return f"ws://127.0.0.1:{self.port}{path}?key={key if key is not None else session['key']}"

    # -- host state -----------------------------------------------------------------------------
    def host_state(self) -> dict[str, list[str]]:
        """Everything a sandbox of this stack can leave on the host, by kind."""
        agent = self.data_dir / "agent"
        state: dict[str, list[str]] = {}
        state["sandbox_dirs"] = (
            sorted(p.name for p in (agent / "sandboxes").glob("*")) if (agent / "sandboxes").exists() else []
        )
        state["runc_state"] = sorted(p.name for p in (agent / "runc").glob("*")) if (agent / "runc").exists() else []
        pool = agent / "net"  # networks waiting in the agent's pool are not leftovers
        pooled = sorted(p.name for p in pool.glob("*")) if pool.exists() else []
        lxcfs = self.data_dir / "lxcfs"  # the agent's own, not a sandbox's; gone after stop()
        state["mounts"] = sorted(
            str(p) for p in mounts.mounts_under(self.data_dir) if p.parent.parent != pool and p != lxcfs
        )
        state.update(self.network_leftovers(pooled))
        cgroup_dirs = []
        for hierarchy in cgroups.hierarchies():
            base = hierarchy / self.cgroup_parent
            if base.is_dir():
                cgroup_dirs += [str(p) for p in base.iterdir() if p.is_dir()]
        state["cgroups"] = sorted(cgroup_dirs)
        procs = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                in_sandbox = f"/{self.cgroup_parent}/" in (proc_dir / "cgroup").read_text()
                zombie = "\nState:\tZ" in (proc_dir / "status").read_text()  # exited, awaiting init's reaping
            except OSError:
                continue
            if in_sandbox and not zombie:
                procs.append(proc_dir.name)
        state["processes"] = sorted(procs)
        return state

    def network_leftovers(self, pooled: list[str]) -> dict[str, list[str]]:
        """Network namespaces, veths and nft address elements of this stack outside the agent's pool."""
        config = NetworkConfig.from_settings(load_config(self.env).network)
        net = SandboxNetwork(config)
        found = net.leftovers()
        elements = net.elements()
        return {
            "netns": [n for n in found["netns"] if n not in {config.netns_name(i) for i in pooled}],
            "veths": [v for v in found["veth"] if v not in {config.veth_name(i) for i in pooled}],
            "addresses": sorted(str(a) for a, owner in elements.items() if owner not in pooled),
        }

    def left_on_host(self) -> dict[str, list[str]]:
        """The kinds of ``host_state`` that are not empty: what this stack's sandboxes left behind."""
        return {kind: found for kind, found in self.host_state().items() if found}

    def assert_clean_host(self, timeout: float = 20) -> None:
        """Wait until nothing of this stack's sandboxes is left on the host; else AssertionError naming what is."""
        eventually(
            lambda: not self.left_on_host(),
            "nothing of this stack's sandboxes left on the host",
            timeout,
            0.1,
            explain=lambda: f"left on the host: {self.left_on_host()}",
        )

    def wait_for_clean_host(self, timeout: float = 20) -> dict[str, list[str]]:
        """Wait up to ``timeout`` for a clean host, then return ``host_state()`` for the caller to check."""
        with contextlib.suppress(AssertionError):
            self.assert_clean_host(timeout)
        return self.host_state()


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (of all its threads); none once it is gone."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _is_part(pid: int, words: tuple[str, ...]) -> bool:
    """Whether the live process ``pid`` has every one of ``words`` in its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        zombie = "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    argv = cmdline.replace("\0", " ").split()
    return not zombie and all(any(arg == w or arg.endswith("/" + w) for arg in argv) for w in words)


class Terminal:
    """A scripted terminal client speaking the browser's websocket protocol."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.output = bytearray()
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Terminal:
        return cls(await websockets.connect(url, max_size=4 * 1024 * 1024, **kwargs))

    async def type(self, text: str) -> None:
        await self.ws.send(b"\x00" + text.encode())

    async def resize(self, cols: int, rows: int) -> None:
        await self.ws.send(b"\x01" + json.dumps({"cols": cols, "rows": rows}).encode())

    async def receive_one(self, timeout: float) -> None:
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(message, bytes):
            assert message[:1] == b"\x00", f"unexpected binary opcode {message[:1]!r}"
            self.output += message[1:]
        else:
            self.events.append(json.loads(message))

    async def expect(self, needle: bytes | str, timeout: float = 10) -> bytes:
        """Wait until ``needle`` appears in the output; returns the output so far."""
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.output:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen within {timeout}s; output: {bytes(self.output)[-500:]!r}")
            await self.receive_one(left)
        return bytes(self.output)

    async def expect_event(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if event.get("type") == type_:
                    self.events.remove(event)
                    return event
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {type_!r} event within {timeout}s; events: {self.events}")
            await self.receive_one(left)

    async def run(self, command: str, timeout: float = 10) -> str:
        """Run a shell command and return what it printed (between unique markers)."""
        marker = f"M{time.monotonic_ns()}"
        start = len(self.output)
        # The empty quotes keep the echoed command line from containing the markers themselves.
        await self.type(f"echo {marker}A''; {command}; echo {marker}Z''\n")
        await self.expect(f"{marker}Z\r\n", timeout)
        text = bytes(self.output[start:]).decode(errors="replace")
        body = text.split(f"{marker}A\r\n", 1)[1]
        return body.split(f"{marker}Z\r\n", 1)[0].replace("\r\n", "\n")

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait for the server to close; returns the close code."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                await self.receive_one(max(0.01, deadline - asyncio.get_running_loop().time()))
        except websockets.ConnectionClosed:
            return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
