"""A sandbox host of its own (PLAYGROUND_ROLE=sandbox-host, docs/hosts.md): the launcher runs the keeper
and the agent alone, in a network namespace standing for another machine, with its own address on a
test bridge; the site reaches its agent over mutual TLS through that bridge, as from another machine.
Traffic stays on the bridge and inside the namespaces the test made."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.host import cgroups
from sandbox.wire import tls
from sandbox.wire.client import AgentClient, RemoteAgent
from sandbox.wire.protocol import Kind
from tests.stack import REPO, claim_subnet, free_port, hostcerts
from tests.waiting import eventually

AGENT_PORT = 7700
READY = b"sandbox host is running"


@dataclass
class SandboxHost:
    netns: str
    address: tls.Address  # where its agent listens: its own address on the test bridge
    site_dir: Path  # the site's certificates
    log: Path
    proc: subprocess.Popen[bytes]
    cgroup_parent: str

    @property
    def agent(self) -> AgentClient:
        return AgentClient(RemoteAgent(self.address, tls.client_context(self.site_dir)))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def sandbox_host() -> Iterator[SandboxHost]:
    tag = f"{os.getpid() % 100000}"
    netns, bridge, veth = f"pgsh{tag}", f"pgsh{tag}br", f"pgsh{tag}h"
    link = ipaddress.IPv4Network(claim_subnet(free_port()))
    site_side, host_side = (str(a) for a in list(link.hosts())[:2])
    where = Path(tempfile.mkdtemp(prefix="pg-sh-", dir="/tmp"))  # short: sockets live below it
    where.chmod(0o755)  # sandboxes' own root users pass through it to their root filesystems
    site_dir, host_dir = where / "site-tls", where / "host-tls"
    hostcerts(site_dir, "site")
    hostcerts(site_dir, "host", "sandbox-1", "--address", host_side, "--out", str(host_dir))
    run("ip", "netns", "add", netns)
    try:
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", f"{site_side}/{link.prefixlen}", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        run("ip", "link", "set", veth, "master", bridge, "up")
        run("ip", "-n", netns, "addr", "add", f"{host_side}/{link.prefixlen}", "dev", "eth0")
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        cgroup_parent = f"playground-test-{os.getpid()}-sandbox-host"
        env = dict(
            os.environ,
            PLAYGROUND_ROLE="sandbox-host",
            PLAYGROUND_AGENT_LISTEN=f"{host_side}:{AGENT_PORT}",
            PLAYGROUND_TLS_DIR=str(host_dir),
            PLAYGROUND_DATA_DIR=str(where / "data"),
            PLAYGROUND_CGROUP_PARENT=cgroup_parent,
            PLAYGROUND_NETWORK_NAME=f"s{tag}",
            PLAYGROUND_SANDBOX_SUBNET=claim_subnet(free_port()),
            PLAYGROUND_WARM_POOL="0",
            PLAYGROUND_DEFAULT_IMAGE="busybox",
        )
        log = where / "launcher.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                # Only the network namespace is its own, as systemd's NetworkNamespacePath= gives it.
                ["nsenter", f"--net=/run/netns/{netns}", "--", sys.executable, "-m", "playground.launcher"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        host = SandboxHost(netns, tls.Address(host_side, AGENT_PORT), site_dir, log, proc, cgroup_parent)
        try:
            eventually(
                lambda: READY in log.read_bytes() or proc.poll() is not None,
                "the sandbox host says it is running",
                90,
                0.2,
                explain=host.log_tail,
            )
            assert proc.poll() is None, f"the sandbox host exited {proc.returncode}:\n{host.log_tail()}"
            yield host
        finally:
            host.stop()
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def test_a_sandbox_host_runs_the_keeper_and_the_agent_alone(sandbox_host: SandboxHost) -> None:
    parts = {line.split("]")[0] + "]" for line in sandbox_host.log_tail().splitlines() if line.startswith("[")}
    assert {"[keeper]", "[agent]"} <= parts
    assert not parts & {"[redis]", "[daphne]", "[worker]", "[beat]", "[ports]", "[registry]"}


@pytest.fixture
async def sandbox(sandbox_host: SandboxHost) -> AsyncIterator[str]:
    """A busybox sandbox on the sandbox host, made and destroyed by the site over TLS."""
    sandbox_id = uuid.uuid4().hex
    await sandbox_host.agent.request("create", id=sandbox_id, hostname="node1", image="busybox")
    try:
        yield sandbox_id
    finally:
        await sandbox_host.agent.request("destroy", id=sandbox_id)


async def test_the_site_reaches_a_sandbox_hosts_agent_at_its_own_address_and_gets_a_working_shell(
    sandbox_host: SandboxHost, sandbox: str
) -> None:
    stream = await sandbox_host.agent.attach(sandbox, wait=30)
    try:
        await stream.send(Kind.DATA, b"echo from-$(hostname)-$((6 * 7))\n")
        seen = b""
        while b"from-node1-42" not in seen:
            frame = await asyncio.wait_for(stream.read(), 10)
            assert frame is not None, f"the stream ended after {seen!r}"
            seen += frame[1] if frame[0] == Kind.DATA else b""
    finally:
        await stream.close()
    # The sandbox runs on the sandbox host: its cgroup is there, under that host's parent.
    assert any(d.exists() for d in cgroups.sandbox_dirs(sandbox_host.cgroup_parent, sandbox))


async def test_a_sandbox_cannot_reach_the_agent_of_its_own_host(sandbox_host: SandboxHost, sandbox: str) -> None:
    probe = f"nc -w 2 {sandbox_host.address.host} {AGENT_PORT} </dev/null && echo reached || echo refused"
    ran = await sandbox_host.agent.request("run", sandbox=sandbox, script=probe, timeout=10, limit=1024)
    assert ran["output"].strip().splitlines()[-1] == "refused"


async def test_stopping_a_sandbox_host_destroys_its_sandboxes_and_leaves_nothing(sandbox_host: SandboxHost) -> None:
    agent = sandbox_host.agent
    sandbox_id = uuid.uuid4().hex
    await agent.request("create", id=sandbox_id, hostname="node1", image="busybox")
    assert sandbox_host.stop() == 0, sandbox_host.log_tail()
    assert not any(d.exists() for d in cgroups.sandbox_dirs(sandbox_host.cgroup_parent, sandbox_id))
    links = subprocess.run(["ip", "-n", sandbox_host.netns, "-o", "link"], capture_output=True, text=True).stdout
    assert [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()] == ["lo", "eth0"]
    tables = subprocess.run(["ip", "netns", "exec", sandbox_host.netns, "nft", "list", "tables"], capture_output=True)
    assert tables.stdout.strip() == b""
