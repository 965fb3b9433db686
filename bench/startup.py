"""Create-to-first-prompt: Playground (API call to the first prompt on the websocket, and the
agent alone) against a bare ``runc run`` and ``docker run`` on the same busybox rootfs."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.host import abis
from sandbox.images.store import build_busybox_rootfs
from sandbox.runtime.bundle import SandboxSpec, build_config
from sandbox.settings import load as load_settings
from sandbox.wire.client import AgentClient
from sandbox.wire.stream import TerminalStream
from tests.stack import REPO, Stack, Terminal

PROMPT = b"# "
RUNC_CGROUP_PARENT = "playground-bench"  # the bare runc peer's sandboxes live under it


def read_until_prompt(fd: int, timeout: float = 20, needle: bytes = PROMPT) -> None:
    """Read the terminal ``fd`` until ``needle`` (the prompt) comes; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {needle!r} within {timeout}s; saw {seen[-200:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                raise RuntimeError(f"terminal closed before the prompt; saw {seen[-300:]!r}") from None


async def api_prompt(stack: Stack, image: str | None = None) -> tuple[float, dict[str, Any], Terminal]:
    """POST /api/sessions/ (of ``image``, else the default image), open the terminal, wait for the
    prompt: the seconds that took, the session and its open terminal (the caller closes both)."""
    started = time.perf_counter()
    session = await asyncio.to_thread(stack.start_session, **({"image": image} if image else {}))
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect(PROMPT, timeout=20)
    return time.perf_counter() - started, session, terminal


async def playground_api(stack: Stack, image: str = "busybox") -> float:
    """POST /api/sessions/ (of ``image``), open the terminal, wait for the prompt; the session is then deleted."""
    elapsed, session, terminal = await api_prompt(stack, image)
    await terminal.close()
    await asyncio.to_thread(stack.end_session, session)
    await asyncio.to_thread(stack.wait_for_clean_host)
    return elapsed


async def playground_api_warm(stack: Stack, pool: int) -> float:
    """As ``playground_api`` with the warm pool on; afterwards waits until the pool is full again."""
    elapsed, session, terminal = await api_prompt(stack)
    await terminal.close()
    await asyncio.to_thread(stack.end_session, session)
    await pool_full(stack, pool)
    return elapsed


async def pool_full(stack: Stack, pool: int, timeout: float = 30) -> None:
    """Wait until the stack runs no visitor's sandbox and its warm pool holds ``pool`` ready ones;
    TimeoutError after ``timeout`` seconds."""
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = await agent.request("list")
        if not listing["sandboxes"] and sum(listing["warm"].values()) == pool:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"the warm pool did not hold {pool} ready sandboxes within {timeout} s:\n{stack.log_tail()}")


async def playground_agent(stack: Stack, index: int) -> float:
    """The agent alone: create over its socket, attach, wait for the prompt."""
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    sandbox_id = f"bench{os.getpid()}x{index:04d}"
    started = time.perf_counter()
    await agent.request("create", id=sandbox_id, hostname="node1")
    stream = await attach_prompt(agent, sandbox_id)
    elapsed = time.perf_counter() - started
    await stream.close()
    await agent.request("destroy", id=sandbox_id)
    return elapsed


async def attach_prompt(agent: AgentClient, sandbox_id: str, timeout: float = 20) -> TerminalStream:
    """Attach to the first terminal of the sandbox and read it up to the prompt; the open stream
    (the caller closes it). TimeoutError after ``timeout`` seconds."""
    stream = await agent.attach(sandbox_id)
    try:
        await stream_until(stream, PROMPT, timeout)
    except BaseException:
        await stream.close()
        raise
    return stream


async def stream_until(stream: TerminalStream, needle: bytes, timeout: float = 20) -> None:
    """Read the agent's terminal ``stream`` until ``needle`` comes; TimeoutError after ``timeout`` seconds,
    RuntimeError if the stream ends first."""
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            frame = await stream.read()
            if frame is None:
                raise RuntimeError(f"the terminal ended before {needle!r}; saw {seen[-200:]!r}")
            seen += frame[1]


def peer_rootfs(stack: Stack) -> Path:
    """A busybox tree like the image's (the same files) for the peers, which use it as their root
    directly: where runc's init, already in the user namespace, can reach it (the store is root's)."""
    rootfs = stack.data_dir / "bench-rootfs"
    if not rootfs.exists():
        build_busybox_rootfs(rootfs, load_settings(stack.env).uid_base)
    return rootfs


def debian_image(stack: Stack) -> float:
    """Build the ``debian`` image into ``stack`` (linked from var/cache when built before); its seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.images", "build", "debian"],
        cwd=REPO,
        env={**stack.env, "PLAYGROUND_IMAGE_CACHE": str(REPO / "var" / "cache")},
    )
    if result.returncode != 0:
        raise RuntimeError("building the debian image failed; see above")
    return time.monotonic() - started


def bare_runc(rootfs: Path, work: Path, index: int, command: bytes = b"", answer: bytes = b"") -> float:
    """``runc run`` in the foreground on a PTY, same namespaces and limits, no overlay, no API: the
    seconds to the prompt, or with ``command``, to ``answer`` after it is typed at the prompt."""
    bundle = work / f"bundle{index}"
    bundle.mkdir()
    spec = SandboxSpec(
        f"benchrunc{index}",
        "node1",
        ["/bin/sh", "-l"],
        ["PATH=/bin:/sbin:/usr/bin", "TERM=xterm"],
        "/root",
        512 * 1024**2,
        1.0,
        256,
        cgroup_parent=RUNC_CGROUP_PARENT,
        x32=abis.runs_x32(),  # the same seccomp filter as the agent's sandboxes
    )
    config = build_config(spec)
    config["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(config))
    root = work / "runc-state"
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["runc", "--root", str(root), "run", "--bundle", str(bundle), spec.sandbox_id],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        read_until_prompt(master)
        if command:
            os.write(master, command)
            read_until_prompt(master, needle=answer)
        elapsed = time.perf_counter() - started
    finally:
        # Stopped as the agent stops its sandboxes: SIGKILL, then delete once it has exited (a
        # `runc delete --force` of a running container sleeps 100 ms before it looks again).
        subprocess.run(["runc", "--root", str(root), "kill", spec.sandbox_id, "KILL"], capture_output=True)
        proc.wait(10)
        subprocess.run(["runc", "--root", str(root), "delete", "--force", spec.sandbox_id], capture_output=True)
        os.close(master)
    return elapsed


STARTED_DOCKERD: list[subprocess.Popen[bytes]] = []
BENCH_IMAGE = "playground-bench/busybox:latest"


def stop_started_dockerd() -> None:
    """Stop the Docker engine this benchmark started, if it started one, after removing the image
    it imported (an engine that was already running keeps the image, as a cache for next time)."""
    if STARTED_DOCKERD:
        subprocess.run(["docker", "rmi", "--force", BENCH_IMAGE], capture_output=True)
    while STARTED_DOCKERD:
        proc = STARTED_DOCKERD.pop()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def docker_available() -> str | None:
    """None when a Docker engine answers (starting Debian's dockerd if needed), else why not."""
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return None
    if shutil.which("dockerd") is None:
        return "no Docker engine (dockerd) is installed; 'make bench' installs docker.io"
    log = open(tempfile.gettempdir() + "/playground-bench-dockerd.log", "ab")
    # The peer runs with --network none, so the engine needs no network of its own: without these
    # flags dockerd would leave the host with ip_forward=1, an iptables FORWARD policy of DROP, its
    # own chains and a docker0 bridge after it stops, and later runs (tests included) would see them.
    quiet_network = ["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--bridge=none"]
    STARTED_DOCKERD.append(
        subprocess.Popen(["dockerd", *quiet_network], stdout=log, stderr=log, start_new_session=True)
    )
    for _ in range(100):
        if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            return None
        time.sleep(0.3)
    return "dockerd did not start; see /tmp/playground-bench-dockerd.log"


def docker_image(rootfs: Path) -> str:
    """Import the busybox rootfs so Docker starts exactly the same files."""
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", BENCH_IMAGE], stdin=tar.stdout, check=True, capture_output=True)
    tar.wait()
    return BENCH_IMAGE


def docker_run(image: str, index: int) -> float:
    name = f"playground-bench-{os.getpid()}-{index}"
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            "docker",
            "run",
            "--rm",
            "-it",
            "--name",
            name,
            "--network",
            "none",
            "--hostname",
            "node1",
            "-m",
            "512m",
            "--cpus",
            "1",
            "--pids-limit",
            "256",
            image,
            "/bin/sh",
            "-l",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        read_until_prompt(master, timeout=60)
        elapsed = time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        proc.wait(30)
        os.close(master)
    return elapsed
