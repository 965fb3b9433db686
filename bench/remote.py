"""Keystroke echo through the agent of another host against this host's agent (issue #19, docs/hosts.md).

One stack whose agent also listens over mutual TLS (PLAYGROUND_AGENT_LISTEN) on its gateway address,
with certificates from ``manage.py hostcerts``. Two busybox sandboxes: one attached as the web
tier attaches this host's terminals (the unix socket, the PTY lent to the viewer), the other as it
would attach a terminal of another host (TCP with TLS 1.3, every byte through the agent). Both run
``dd bs=1`` in raw mode and are typed in alternating blocks (bench/terminals.py's echo run), so the
machine's load weighs on both alike. The other host is this machine: the figure is what the TLS
link and the agent's forwarding add, without a network's round trip. Also timed, alternately: one
request (``ping``) on a new connection each, which is what every create and destroy pays.

What a visitor feels is the echo through the site, in the browser's websocket, Daphne and then one of
those two paths. The site's echo to this host's agent is typed in the same alternation, and the
site's echo to another host's is estimated as it plus what the remote link adds at the agent's
protocol (the remote median and p99 less the local ones): the site does not yet attach terminals of
other hosts (docs/hosts.md), so that one is not measured.
"""

from __future__ import annotations

import asyncio
import ipaddress
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from bench.measuring import percentile, summary
from bench.terminals import Server, TerminalClient, interleaved_echo, playground_server
from sandbox.wire import tls
from sandbox.wire.client import AgentClient, RemoteAgent
from sandbox.wire.protocol import Kind
from sandbox.wire.stream import TerminalStream
from tests.stack import Stack, claim_subnet, free_port, hostcerts

TARGET_RATIO = 1.5  # remote echo against local, median and p99 (issue #19, acceptance 3)
PINGS = 400


class StreamClient(TerminalClient):
    """A terminal read and typed at the agent's protocol (a TerminalStream), for the echo run."""

    def __init__(self, stream: TerminalStream) -> None:
        self.stream = stream
        self.pending = bytearray()

    async def type(self, text: str) -> None:
        await self.stream.send(Kind.DATA, text.encode())

    def output_of(self, message: str | bytes) -> bytes:
        return message if isinstance(message, bytes) else b""

    async def read(self, timeout: float) -> bytes:
        frame = await asyncio.wait_for(self.stream.read(), timeout)
        if frame is None:
            raise ConnectionError("the agent ended the terminal stream")
        return frame[1] if frame[0] == Kind.DATA else b""

    async def close(self) -> None:
        await self.stream.close()


def run(keystrokes: int) -> dict[str, Any]:
    subnet = claim_subnet(free_port())
    gateway = str(next(ipaddress.IPv4Network(subnet).hosts()))
    with tempfile.TemporaryDirectory(prefix="pg-bench-tls-") as where:
        tls_dir = Path(where)
        hostcerts(tls_dir, "site")
        hostcerts(tls_dir, "host", "bench", "--address", gateway, "--out", str(tls_dir))
        address = tls.Address(gateway, free_port())
        settings = {"PLAYGROUND_SANDBOX_SUBNET": subnet, "PLAYGROUND_TLS_DIR": str(tls_dir)}
        with Stack.running(PLAYGROUND_AGENT_LISTEN=str(address), **settings) as stack:
            local = AgentClient(stack.data_dir / "run" / "agent.sock")
            remote = AgentClient(RemoteAgent(address, tls.client_context(tls_dir)))
            results = uvloop.run(measure(stack, local, remote, keystrokes))  # the loop Daphne runs on
    print_table(results)
    return results


async def measure(stack: Stack, local: AgentClient, remote: AgentClient, keystrokes: int) -> dict[str, Any]:
    ids = [uuid.uuid4().hex for _ in range(2)]
    for sandbox_id in ids:
        await local.request("create", id=sandbox_id, hostname="node1", image="busybox")
    try:
        servers = [
            Server("local", lambda: _attached(local, ids[0], pty=True), []),
            Server("remote", lambda: _attached(remote, ids[1], pty=False), []),
            playground_server(stack),  # the site, to this host's agent, as a browser types
        ]
        echo = await interleaved_echo(servers, keystrokes)
        pings = await _alternate_pings({"local": local, "remote": remote}, PINGS)
    finally:
        for sandbox_id in ids:
            await local.request("destroy", id=sandbox_id)
    results: dict[str, Any] = {"keystrokes": keystrokes}
    for name in ("local", "remote"):
        samples = echo[name]
        results[name] = {
            "echo_median_ms": statistics.median(samples) * 1000,
            "echo_p99_ms": percentile(samples, 0.99) * 1000,
            "echo_max_ms": max(samples) * 1000,
            "request": summary(pings[name]),
        }
    for figure in ("echo_median_ms", "echo_p99_ms"):
        results[f"ratio_{figure.removesuffix('_ms').removeprefix('echo_')}"] = (
            results["remote"][figure] / results["local"][figure]
        )
    results["ratio_request_median"] = (
        results["remote"]["request"]["median_ms"] / results["local"]["request"]["median_ms"]
    )
    site = echo["playground"]
    results["site_local"] = {
        "echo_median_ms": statistics.median(site) * 1000,
        "echo_p99_ms": percentile(site, 0.99) * 1000,
    }
    for figure in ("median", "p99"):  # the site's echo plus what the remote link adds: an estimate
        added = results["remote"][f"echo_{figure}_ms"] - results["local"][f"echo_{figure}_ms"]
        estimate = results["site_local"][f"echo_{figure}_ms"] + added
        results[f"site_remote_estimated_{figure}_ms"] = estimate
        results[f"site_ratio_estimated_{figure}"] = estimate / results["site_local"][f"echo_{figure}_ms"]
    results["estimate_within_target"] = (
        max(results["site_ratio_estimated_median"], results["site_ratio_estimated_p99"]) <= TARGET_RATIO
    )
    return results


async def _attached(agent: AgentClient, sandbox_id: str, pty: bool) -> TerminalClient:
    """The sandbox's first terminal; its replay shows the shell's prompt (``Server.fresh`` waits for it)."""
    return StreamClient(await agent.attach(sandbox_id, wait=30, pty=pty))


async def _alternate_pings(agents: dict[str, AgentClient], count: int) -> dict[str, list[float]]:
    """``count`` pings of each agent, one of each in turn, each on a new connection."""
    samples: dict[str, list[float]] = {name: [] for name in agents}
    for i in range(-10, count):
        for name, agent in agents.items() if i % 2 == 0 else list(agents.items())[::-1]:
            started = time.perf_counter()
            await agent.request("ping")
            if i >= 0:
                samples[name].append(time.perf_counter() - started)
    return samples


def print_table(results: dict[str, Any]) -> None:
    for name in ("local", "remote"):
        r = results[name]
        print(
            f"  {name:<7} echo median {r['echo_median_ms']:6.3f} ms  p99 {r['echo_p99_ms']:6.3f} ms   "
            f"one request {r['request']['median_ms']:6.3f} ms",
            flush=True,
        )
    print(
        f"  remote/local at the agent's protocol: echo median {results['ratio_median']:.2f}x, "
        f"p99 {results['ratio_p99']:.2f}x; one request {results['ratio_request_median']:.2f}x",
        flush=True,
    )
    site = results["site_local"]
    print(
        f"  the site's echo (websocket, Daphne, this host's agent): median {site['echo_median_ms']:.3f} ms, "
        f"p99 {site['echo_p99_ms']:.3f} ms; through another host's agent, estimated: median "
        f"{results['site_remote_estimated_median_ms']:.3f} ms ({results['site_ratio_estimated_median']:.2f}x), "
        f"p99 {results['site_remote_estimated_p99_ms']:.3f} ms ({results['site_ratio_estimated_p99']:.2f}x); "
        f"target <= {TARGET_RATIO}x, not measured end to end yet",
        flush=True,
    )
