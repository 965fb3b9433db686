"""Keystroke echo through the agent of another sandbox host against this machine's (issue #19, docs/hosts.md).

One stack whose agent also listens over mutual TLS (PLAYGROUND_AGENT_LISTEN) on its gateway address,
with certificates from ``manage.py hostcerts``, and registered with its own site as a sandbox host of
another machine (``manage.py hosts add``). Placement then puts a first session on this machine (a tie
goes to it) and a second on "the other host", which is the same agent reached over TLS: the site
attaches the first's terminal on the unix socket with the PTY lent, the second's over TLS with every
byte through the agent. Both are typed through the site's websocket, as a browser types, in
alternating blocks of ``dd bs=1`` in raw mode (bench/terminals.py's echo run), so the machine's load
weighs on both alike. The other host is this machine: the figures are what the TLS link and the
agent's forwarding add, without a network's round trip.

Also measured, the same way at the agent's protocol (no websocket, no Daphne): the two paths alone,
and between them this machine's agent streaming the terminal over its unix socket without lending
the PTY (every byte through the agent, as over TLS, without TLS and TCP);
and, alternately, one request (``ping``) on a new connection each, which every create and destroy pays.
And the machine's floor for what the remote path adds: a byte sent to another process and back over
a unix socket pair and over TCP (blocking reads, no event loop), the price of the one process hop
more (the agent's) that a keystroke and its echo make through another host's agent; and the floor of the
whole hop, a PTY's echo typed straight into it and through a minimal relay process over the same
mutual TLS (bench/relayfloor.py), which tells what any relay adds here from what the agent adds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from bench.measuring import percentile, summary
from bench.relayfloor import relay_floor
from bench.terminals import PlaygroundClient, Server, TerminalClient, interleaved_echo
from sandbox.wire import tls
from sandbox.wire.client import AgentClient, RemoteAgent
from sandbox.wire.protocol import Kind
from sandbox.wire.stream import TerminalStream
from tests.hostkit import placed_on
from tests.stack import Stack, claim_subnet, free_port, hostcerts

TARGET_RATIO = 1.5  # remote echo against local, median and p99 (issue #19, acceptance 3)
PINGS = 400
HOPS = 4000  # round trips between two processes


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
        tls_dir.chmod(0o755)  # the web user reads the site's certificate
        hostcerts(tls_dir, "site")
        hostcerts(tls_dir, "host", "bench", "--address", gateway, "--out", str(tls_dir))
        address = tls.Address(gateway, free_port())
        settings = {"PLAYGROUND_SANDBOX_SUBNET": subnet, "PLAYGROUND_TLS_DIR": str(tls_dir)}
        with Stack.running(PLAYGROUND_AGENT_LISTEN=str(address), **settings) as stack:
            stack.manage("hosts", "add", "bench", str(address))
            local = AgentClient(stack.data_dir / "run" / "agent.sock")
            remote = AgentClient(RemoteAgent(address, tls.client_context(tls_dir)))
            results = uvloop.run(measure(stack, local, remote, keystrokes, gateway))  # the loop Daphne runs on
            floor = relay_floor(tls_dir, gateway, keystrokes)
    for name, samples in floor.items():
        results[f"floor_{name}"] = echo_figures(samples)
    for figure in ("median", "p99"):
        key = f"echo_{figure}_ms"
        results[f"floor_added_{figure}_ms"] = results["floor_relay"][key] - results["floor_pty"][key]
        results[f"floor_loop_added_{figure}_ms"] = results["floor_relay_loop"][key] - results["floor_pty"][key]
        results[f"site_added_{figure}_ms"] = results["site_remote"][key] - results["site_local"][key]
    print_table(results)
    return results


async def measure(
    stack: Stack, local: AgentClient, remote: AgentClient, keystrokes: int, gateway: str
) -> dict[str, Any]:
    here, there = stack.start_session(image="busybox"), stack.start_session(image="busybox")
    placed = [placed_on(stack, session) for session in (here, there)]
    if placed != [None, "bench"]:
        raise SystemExit(f"bench remote: the sessions went to {placed}, not to this machine and then 'bench'")
    ids = [uuid.uuid4().hex for _ in range(3)]
    for sandbox_id in ids:
        await local.request("create", id=sandbox_id, hostname="node1", image="busybox")
    try:
        servers = [
            Server("site_local", lambda: PlaygroundClient.open(stack.terminal_url(here)), []),
            Server("site_remote", lambda: PlaygroundClient.open(stack.terminal_url(there)), []),
            Server("local", lambda: _attached(local, ids[0], pty=True), []),
            Server("remote", lambda: _attached(remote, ids[1], pty=False), []),
            Server("local_streamed", lambda: _attached(local, ids[2], pty=False), []),
        ]
        echo = await interleaved_echo(servers, keystrokes)
        pings = await _alternate_pings({"local": local, "remote": remote}, PINGS)
        hops = process_round_trips(HOPS)
        tcp_hops = process_round_trips(HOPS, gateway)
    finally:
        for sandbox_id in ids:
            await local.request("destroy", id=sandbox_id)
        stack.end_started_sessions()
    results: dict[str, Any] = {"keystrokes": keystrokes}
    for name, samples in echo.items():
        results[name] = echo_figures(samples)
    for name in ("local", "remote"):
        results[name]["request"] = summary(pings[name])
    for path in ("site", "agent"):
        near, far = ("site_local", "site_remote") if path == "site" else ("local", "remote")
        for figure in ("median", "p99"):
            key = f"echo_{figure}_ms"
            results[f"{path}_ratio_{figure}"] = results[far][key] / results[near][key]
    results["ratio_request_median"] = (
        results["remote"]["request"]["median_ms"] / results["local"]["request"]["median_ms"]
    )
    results["process_round_trip"] = summary(hops)
    results["process_round_trip_tcp"] = summary(tcp_hops)
    results["target_met"] = max(results["site_ratio_median"], results["site_ratio_p99"]) <= TARGET_RATIO
    return results


def echo_figures(samples: list[float]) -> dict[str, float]:
    """Median, p99 and max of echo latencies in seconds, as milliseconds."""
    return {
        "echo_median_ms": statistics.median(samples) * 1000,
        "echo_p99_ms": percentile(samples, 0.99) * 1000,
        "echo_max_ms": max(samples) * 1000,
    }


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


def process_round_trips(count: int, host: str | None = None) -> list[float]:
    """Seconds of ``count`` round trips of one byte to a forked process and back over a unix socket
    pair, or with ``host`` (an address of this machine) over a TCP connection to it."""
    here, there = socket.socketpair() if host is None else _tcp_pair(host)
    child = os.fork()
    if child == 0:  # echo until the pair closes; no Python beyond the two calls
        here.close()
        while byte := there.recv(1):
            there.send(byte)
        os._exit(0)
    there.close()
    samples = []
    try:
        for i in range(-100, count):
            started = time.perf_counter()
            here.send(b"x")
            here.recv(1)
            if i >= 0:
                samples.append(time.perf_counter() - started)
    finally:
        here.close()
        os.waitpid(child, 0)
    return samples


def _tcp_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Both ends of a TCP connection to ``host`` (no delay on either, as the agents' connections)."""
    with socket.create_server((host, 0)) as listener:
        here = socket.create_connection(listener.getsockname())
        there, _ = listener.accept()
    for end in (here, there):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return here, there


def print_table(results: dict[str, Any]) -> None:
    names = {
        "site_local": "site, this machine",
        "site_remote": "site, another host",
        "local": "agent, unix, PTY lent",
        "local_streamed": "agent, unix, streamed",
        "remote": "agent, TLS",
    }
    for name, label in names.items():
        r = results[name]
        line = f"  {label:<22} echo median {r['echo_median_ms']:6.3f} ms  p99 {r['echo_p99_ms']:6.3f} ms"
        if "request" in r:
            line += f"   one request {r['request']['median_ms']:6.3f} ms"
        print(line, flush=True)
    print(
        f"  another host / this machine through the site: median {results['site_ratio_median']:.2f}x, "
        f"p99 {results['site_ratio_p99']:.2f}x (target <= {TARGET_RATIO}x: "
        f"{'met' if results['target_met'] else 'MISSED'}); at the agent's protocol: median "
        f"{results['agent_ratio_median']:.2f}x, p99 {results['agent_ratio_p99']:.2f}x; "
        f"one request {results['ratio_request_median']:.2f}x",
        flush=True,
    )
    print(
        f"  a PTY of this machine, typed straight into: echo median {results['floor_pty']['echo_median_ms']:.3f} ms, "
        f"p99 {results['floor_pty']['echo_p99_ms']:.3f} ms; through a minimal TLS relay process: median "
        f"{results['floor_relay']['echo_median_ms']:.3f} ms, p99 {results['floor_relay']['echo_p99_ms']:.3f} ms; "
        f"through one on asyncio's loop: median {results['floor_relay_loop']['echo_median_ms']:.3f} ms, "
        f"p99 {results['floor_relay_loop']['echo_p99_ms']:.3f} ms",
        flush=True,
    )
    print(
        f"  added by the hop: a minimal relay {results['floor_added_median_ms']:.3f} ms median, "
        f"{results['floor_added_p99_ms']:.3f} ms p99; on asyncio's loop "
        f"{results['floor_loop_added_median_ms']:.3f} ms median, {results['floor_loop_added_p99_ms']:.3f} ms p99; "
        f"the site's remote path {results['site_added_median_ms']:.3f} ms "
        f"median, {results['site_added_p99_ms']:.3f} ms p99",
        flush=True,
    )
    hop, tcp = results["process_round_trip"], results["process_round_trip_tcp"]
    print(
        f"  a byte to another process and back: over a unix socket pair median {hop['median_ms']:.3f} ms, "
        f"p99 {hop['p99_ms']:.3f} ms; over TCP median {tcp['median_ms']:.3f} ms, p99 {tcp['p99_ms']:.3f} ms",
        flush=True,
    )
