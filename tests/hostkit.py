"""A sandbox host of its own for the tests (PLAYGROUND_ROLE=sandbox-host, docs/hosts.md): the launcher
runs the keeper and the agent alone in a network namespace standing for another machine, with its
own address on a test bridge, its agent listening there over mutual TLS. Traffic stays on that
bridge and inside the namespaces the test made."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.wire import tls
from sandbox.wire.client import AgentClient, RemoteAgent
from tests.stack import REPO, Stack, claim_subnet, free_port, hostcerts
from tests.visitors import database
from tests.waiting import eventually

AGENT_PORT = 7700
READY = b"sandbox host is running"
UNIT = REPO / "deploy" / "systemd" / "playground-sandbox-host.service"
ENV_FILE = REPO / "deploy" / "systemd" / "sandbox-host.env"
INSTALLED = "/opt/playground"  # where docs/hosts.md has the checkout, and the unit names it


def unit_command() -> tuple[list[str], Path]:
    """The sandbox host unit's ``ExecStart`` and ``WorkingDirectory``, with the checkout where the
    tests run instead of /opt/playground: the command systemd runs (its ``ExecStartPre``, ``make deps
    image``, is what ``make test`` has done already)."""
    fields = dict(line.split("=", 1) for line in UNIT.read_text().splitlines() if "=" in line and line[0] != "#")
    command = fields["ExecStart"].replace(INSTALLED, str(REPO)).split()
    return command, Path(fields["WorkingDirectory"].replace(INSTALLED, str(REPO)))


def env_file_settings() -> dict[str, str]:
    """The settings of deploy/systemd/sandbox-host.env, which docs/hosts.md installs as they are but
    for the agent's address."""
    lines = (line for line in ENV_FILE.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines)


@dataclass
class SandboxHost:
    """One sandbox host: its name, network namespace, agent's address, the launcher running there."""

    name: str
    netns: str
    address: tls.Address  # where its agent listens: its own address on the test bridge
    site_dir: Path  # the site's certificates (the authority's, which made the host's)
    env: dict[str, str]
    log: Path
    cgroup_parent: str
    site_address: str  # the site's own address on the test bridge
    proc: subprocess.Popen[bytes] | None = None
    killed: bool = False  # killed and not started again: its sandboxes are still there

    @property
    def agent(self) -> AgentClient:
        """The agent as the site reaches it."""
        return AgentClient(RemoteAgent(self.address, tls.client_context(self.site_dir)))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def start(self) -> None:
        """Start the unit's command (:func:`unit_command`) in the host's network namespace alone (as
        systemd's NetworkNamespacePath= would) and wait until it says it runs."""
        start = self.log.stat().st_size if self.log.exists() else 0
        command, directory = unit_command()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "--", *command],
                cwd=directory,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.killed = False
        proc = self.proc
        eventually(
            lambda: READY in self.log.read_bytes()[start:] or proc.poll() is not None,
            "the sandbox host says it is running",
            90,
            0.2,
            explain=self.log_tail,
        )
        assert proc.poll() is None, f"the sandbox host exited {proc.returncode}:\n{self.log_tail()}"

    def stop(self) -> int:
        """Ctrl-C the launcher and wait for it; its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def hang(self) -> None:
        """Stop every process in the host's network namespace where it stands (SIGSTOP), as a machine
        that hangs: its agent's port still takes connections, and nothing answers on them."""
        self._signal_all(signal.SIGSTOP)

    def unhang(self) -> None:
        """Let a hung host's processes go on (SIGCONT)."""
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=True)
        assert pids.stdout.split(), f"no process in {self.netns}"
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signum)

    def kill(self) -> None:
        """Kill the launcher, the keeper and the agent at once, as a host that dies (its sandboxes stay)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.killed = True


class Collected(asyncio.Protocol):
    """What a connection relayed through an agent (``AgentClient.connect_port``) brings, until it ends."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


def placed_on(stack: Stack, session: dict[str, Any]) -> str | None:
    """The name of the sandbox host the site placed ``session`` on; None for the site's own machine."""
    with database(stack) as db:
        row = db.execute(
            "SELECT h.name FROM sandboxes_session s LEFT JOIN hosts_sandboxhost h ON h.id = s.host_id WHERE s.id = ?",
            (session["id"].replace("-", ""),),
        ).fetchone()
    return row[0] if row else None


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def sandbox_hosts(count: int, registry_port: int | None = None, **settings: str) -> Iterator[list[SandboxHost]]:
    """``count`` started sandbox hosts, ``sandbox-1`` on, each in a network namespace of its own with
    its own address on one test bridge (the site's side of it has the first address), their
    certificates made by ``manage.py hostcerts`` (each host's ``site_dir`` holds the site's);
    ``settings`` added to their environments; with ``registry_port``, their mirrors pass the sessions'
    pushes to the site's address on the bridge at that port (PLAYGROUND_REGISTRY_PUSH_VIA). Stopped,
    and the namespaces, bridge and files removed, after the block."""
    tag = f"{os.getpid() % 100000}"
    bridge = f"pgsh{tag}br"
    link = ipaddress.IPv4Network(claim_subnet(free_port()))
    site_side, *host_sides = (str(a) for a in list(link.hosts())[: count + 1])
    where = Path(tempfile.mkdtemp(prefix="pg-sh-", dir="/tmp"))  # short: sockets live below it
    where.chmod(0o755)  # sandboxes' own root users pass through it to their root filesystems
    site_dir = where / "site-tls"
    # As docs/hosts.md says: with the site's PLAYGROUND_REGISTRY_HOSTS_LISTEN set, its registry certificate too.
    hostcerts(
        site_dir,
        "site",
        **({"PLAYGROUND_REGISTRY_HOSTS_LISTEN": f"{site_side}:{registry_port}"} if registry_port else {}),
    )
    site_dir.chmod(0o755)
    hosts: list[SandboxHost] = []
    try:
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", f"{site_side}/{link.prefixlen}", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        for index, address in enumerate(host_sides, start=1):
            own = (
                dict(settings, PLAYGROUND_REGISTRY_PUSH_VIA=f"{site_side}:{registry_port}")
                if registry_port
                else settings
            )
            hosts.append(
                _host_on(bridge, (link, site_side), address, where / f"h{index}", site_dir, f"{tag}{index}", own)
            )
            hosts[-1].start()
        yield hosts
    finally:
        for host in hosts:
            if host.killed:
                host.start()  # its new agent takes over what the killed one left, and stopping it removes that
            if host.proc is not None:
                host.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        for host in hosts:
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def _host_on(
    bridge: str,
    on: tuple[ipaddress.IPv4Network, str],
    address: str,
    where: Path,
    site_dir: Path,
    tag: str,
    settings: dict[str, str],
) -> SandboxHost:
    """Sandbox host ``sandbox-<n>`` (``tag`` ends with n): its namespace with ``address`` on ``bridge``
    (``on``: the bridge's network and the site's address there), its certificate, its settings; not
    started."""
    link, site_address = on
    name, netns, veth = f"sandbox-{tag[-1]}", f"pgsh{tag}", f"pgsh{tag}h"
    # As docs/hosts.md says: made on the web host, the three files copied to the host's <data>/tls.
    hostcerts(site_dir, "host", name, "--address", address)
    host_dir = where / "data" / "tls"
    host_dir.mkdir(parents=True)
    for made in ("ca.crt", "agent.crt", "agent.key"):
        shutil.copy(site_dir / "hosts" / name / made, host_dir / made)
        (host_dir / made).chmod(0o600)
    run("ip", "netns", "add", netns)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    run("ip", "link", "set", veth, "master", bridge, "up")
    run("ip", "-n", netns, "addr", "add", f"{address}/{link.prefixlen}", "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "eth0", "up")
    run("ip", "-n", netns, "link", "set", "lo", "up")
    cgroup_parent = f"playground-test-{os.getpid()}-{name}"
    documented = env_file_settings()
    assert documented["PLAYGROUND_ROLE"] == "sandbox-host"
    env = {name: value for name, value in os.environ.items() if name != "PLAYGROUND_TLS_DIR"}  # <data>/tls
    env |= documented
    env.pop("PLAYGROUND_REGISTRY_PUSH_VIA")  # the doc's example address: the test's own, if any, below
    env |= {
        # What the doc says to edit, and where each test host keeps its files apart from the others'.
        "PLAYGROUND_AGENT_LISTEN": f"{address}:{AGENT_PORT}",
        "PLAYGROUND_DATA_DIR": str(where / "data"),
        "PLAYGROUND_CGROUP_PARENT": cgroup_parent,
        "PLAYGROUND_NETWORK_NAME": f"s{tag}",
        "PLAYGROUND_SANDBOX_SUBNET": claim_subnet(free_port()),
        "PLAYGROUND_WARM_POOL": "0",
        "PLAYGROUND_DEFAULT_IMAGE": "busybox",
        "PLAYGROUND_REGISTRY_UPSTREAM": "none",  # its mirror read-only: tests reach nothing outside
        # Id ranges are claimed host-wide by every agent of one id base; a small host's default pool
        # (its limit and some slack) can be all taken by the sandboxes of the other tests' stacks.
        "PLAYGROUND_SANDBOX_RANGES": "2000",
    }
    env |= settings
    where.mkdir(exist_ok=True)
    return SandboxHost(
        name,
        netns,
        tls.Address(address, AGENT_PORT),
        site_dir,
        env,
        where / "launcher.log",
        cgroup_parent,
        site_address,
    )
