"""Terminal benchmarks: Playground against Jupyter's ``terminado`` serving a plain shell.

Both servers run on this machine and are driven by the same websocket client on loopback,
each in its own protocol (Playground: binary frames with an opcode byte; terminado: JSON text
frames ``["stdin", data]`` / ``["stdout", data]``), with the very same busybox programs:

- **echo**: keystroke echo latency. The shell runs ``dd bs=1`` in raw mode, a program that
  echoes every byte it reads, so each keystroke has exactly one byte of echo; a sample is the
  time from sending the keystroke to receiving its echo.
- **throughput**: MB/s of ``head -c 256M /dev/zero | base64`` received by the client.
- **stopped reader**: the client starts ``head -c 1G /dev/zero | base64``, then stops reading
  the websocket (the TCP connection stays open) for ``STOP_SECONDS``, while the server's
  resident memory is sampled; the growth is the peak minus the memory just before. Then the
  client interrupts the pipeline (Ctrl-C still gets through), reads again, and counts what
  it receives in all: what the server let the pipeline produce.

"The server" is terminado's process, and for Playground Daphne, the sandbox agent and the
terminal keeper together.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from bench.measuring import percentile
from tests.stack import REPO, Stack, free_port

STOP_SECONDS = 20.0
THROUGHPUT_COMMAND = f"head -c {256 * 2**20} /dev/zero | base64"  # 256M: busybox head takes no M suffix
FLOOD_COMMAND = f"head -c {2**30} /dev/zero | base64"
MAX_MESSAGE = 8 * 1024 * 1024
PROMPT = b"# "


class TerminalClient(ABC):
    """One websocket terminal. ``read`` returns the output bytes of the next message (empty for
    a message that carries none); ``pending`` holds output read but not yet looked at."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.pending = bytearray()

    @classmethod
    async def open(cls, url: str) -> TerminalClient:
        return cls(await websockets.connect(url, max_size=MAX_MESSAGE, open_timeout=30))

    @abstractmethod
    async def type(self, text: str) -> None:
        """Send keystrokes."""

    @abstractmethod
    def output_of(self, message: str | bytes) -> bytes:
        """The terminal output a message carries (b"" if it is an event)."""

    async def read(self, timeout: float) -> bytes:
        return self.output_of(await asyncio.wait_for(self.ws.recv(), timeout))

    async def expect(self, marker: bytes, timeout: float) -> None:
        """Read until ``marker``; ``pending`` keeps what came after it."""
        deadline = time.monotonic() + timeout
        while marker not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{marker!r} not seen within {timeout}s; saw {bytes(self.pending[-300:])!r}")
            self.pending += await self.read(left)
        self.pending = self.pending[self.pending.index(marker) + len(marker) :]

    async def close(self) -> None:
        await self.ws.close()


class PlaygroundClient(TerminalClient):
    """The browser protocol (docs/architecture.md, "Terminal websocket")."""

    async def type(self, text: str) -> None:
        await self.ws.send(b"\x00" + text.encode())

    def output_of(self, message: str | bytes) -> bytes:
        return message[1:] if isinstance(message, bytes) and message[:1] == b"\x00" else b""


class TerminadoClient(TerminalClient):
    """terminado's protocol: JSON arrays in text frames."""

    async def type(self, text: str) -> None:
        await self.ws.send(json.dumps(["stdin", text]))

    def output_of(self, message: str | bytes) -> bytes:
        kind, *rest = json.loads(message)
        return rest[0].encode() if kind == "stdout" else b""


# -- memory ------------------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemoryWatch:
    """Samples the summed resident memory of some processes every ``interval`` seconds in a
    thread (the event loop may be busy), from the moment it starts until ``stop``."""

    def __init__(self, pids: list[int], interval: float = 0.02) -> None:
        self.pids = pids
        self.interval = interval
        self.baseline = self.current()
        self.peak = self.baseline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def current(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, self.current())

    def stop(self) -> int:
        """Stop sampling; returns the growth (peak minus baseline) in bytes."""
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())
        return self.peak - self.baseline


# -- the measurements --------------------------------------------------------------------------
class EchoRun:
    """A terminal running ``dd bs=1`` in raw mode for ``count`` keystrokes: each keystroke gets
    exactly one byte of echo, from a program, as a shell's line editor would send it."""

    def __init__(self, client: TerminalClient, count: int) -> None:
        self.client = client
        self.left = count
        self.samples: list[float] = []

    async def start(self) -> None:
        await self.client.type(
            f"stty raw -echo; echo E''GO; dd bs=1 count={self.left} 2>/dev/null; stty sane; echo E''DONE\n"
        )
        await self.client.expect(b"EGO\n", 20)

    async def type(self, count: int) -> None:
        """``count`` keystrokes, one at a time, each timed until its echo arrives."""
        client = self.client
        for _ in range(min(count, self.left)):
            self.left -= 1
            started = time.perf_counter()
            await client.type("x")
            while not client.pending:
                client.pending += await client.read(10)
            self.samples.append(time.perf_counter() - started)
            # Exactly one byte of echo; after the last one the shell's own output may follow at once.
            if client.pending[:1] != b"x" or (self.left and len(client.pending) > 1):
                raise AssertionError(f"expected the echo b'x', got {bytes(client.pending)!r}")
            del client.pending[:1]

    async def finish(self) -> list[float]:
        await self.client.expect(b"EDONE", 20)
        await self.client.expect(PROMPT, 20)
        return self.samples


async def type_line(client: TerminalClient, line: str, echoes: list[float]) -> None:
    """Type ``line`` a key at a time, each once the previous one's echo came (its latency appended to
    ``echoes``), then Enter; what came back is dropped."""
    for key in line:
        sent = time.perf_counter()
        await client.type(key)
        while not await client.read(30):  # an event, not output: the echo is still to come
            pass
        echoes.append(time.perf_counter() - sent)
    client.pending.clear()
    await client.type("\r")


async def read_until(client: TerminalClient, marker: bytes, timeout: float) -> tuple[int, bool]:
    """Read and count output until ``marker`` (not kept); returns (bytes read, whether it came in time)."""
    deadline = time.monotonic() + timeout
    received, tail = 0, bytes(client.pending)
    client.pending.clear()
    while marker not in tail:
        left = deadline - time.monotonic()
        if left <= 0:
            return received, False
        try:
            chunk = await client.read(left)
        except TimeoutError:
            return received, False
        received += len(chunk)
        window = tail + chunk
        if marker in window:
            client.pending += window[window.index(marker) + len(marker) :]
            break
        tail = window[-len(marker) :]
    return received, True


async def throughput(client: TerminalClient, timeout: float = 300) -> dict[str, float]:
    """Output rate of ``THROUGHPUT_COMMAND`` as the client receives it."""
    started = time.perf_counter()
    await client.type(f"{THROUGHPUT_COMMAND}; echo T''END\n")
    received, in_time = await read_until(client, b"TEND", timeout)
    elapsed = time.perf_counter() - started
    if not in_time:
        raise TimeoutError(f"{THROUGHPUT_COMMAND} did not finish within {timeout}s ({received} bytes received)")
    await client.expect(PROMPT, 20)
    return {"bytes": received, "seconds": elapsed, "mb_per_s": received / elapsed / 1e6}


async def stopped_reader(
    client: TerminalClient, pids: list[int], seconds: float = STOP_SECONDS, drain_timeout: float = 300
) -> dict[str, float]:
    """The server's memory growth while the client reads nothing during ``FLOOD_COMMAND``."""
    await asyncio.sleep(1)  # let the server settle after the previous measurement
    watch = MemoryWatch(pids)
    await client.type(f"{FLOOD_COMMAND}; echo F''END\n")
    received = 0
    while received < 1024 * 1024:  # the flood has started
        received += len(await client.read(30))
    await asyncio.sleep(seconds)  # read nothing: the connection stays open, unread
    growth = watch.stop()
    await client.type("\x03")  # interrupt the pipeline: input still flows
    await asyncio.sleep(1)
    await client.type("echo S''TOPPED\n")
    drained_bytes, drained = await read_until(client, b"STOPPED", drain_timeout)
    received += drained_bytes
    return {
        "rss_baseline_mib": watch.baseline / 2**20,
        "rss_peak_mib": watch.peak / 2**20,
        "rss_growth_mib": growth / 2**20,
        "stopped_s": seconds,
        "received_mib": received / 2**20,
        "drained": drained,
    }


@dataclass
class Server:
    """One of the compared servers: how to open a fresh terminal, and its processes."""

    name: str
    open_client: Callable[[], Awaitable[TerminalClient]]
    pids: list[int]

    async def fresh(self) -> TerminalClient:
        client = await self.open_client()
        await client.expect(PROMPT, 30)
        return client


async def interleaved_echo(servers: list[Server], keystrokes: int, block: int = 50) -> dict[str, list[float]]:
    """Echo latencies of every server, typed in alternating blocks of ``block`` keystrokes (the
    order turning each round), so that whatever else the machine does weighs on all alike."""
    runs = {s.name: EchoRun(await s.fresh(), keystrokes) for s in servers}
    for run in runs.values():
        await run.start()
    for round_ in range(0, keystrokes, block):
        for run in list(runs.values()) if round_ // block % 2 == 0 else list(runs.values())[::-1]:
            await run.type(block)
    samples = {name: await run.finish() for name, run in runs.items()}
    for run in runs.values():
        await run.client.close()
    return samples


async def on_fresh_terminal(
    server: Server, measure: Callable[[TerminalClient], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    client = await server.fresh()
    try:
        return await measure(client)
    finally:
        await client.close()


async def compare(servers: list[Server], keystrokes: int, throughput_runs: int = 2) -> dict[str, dict[str, Any]]:
    """Echo (interleaved), throughput (runs alternating, best kept) and the stopped reader (one
    run each, on fresh terminals) of every server."""
    echo = await interleaved_echo(servers, keystrokes)
    rates: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
    for i in range(throughput_runs):
        for server in servers if i % 2 == 0 else servers[::-1]:
            rates[server.name].append(await on_fresh_terminal(server, throughput))
    results = {}
    for server in servers:
        best = max(rates[server.name], key=lambda r: r["mb_per_s"])
        samples = echo[server.name]
        results[server.name] = {
            "echo_keystrokes": len(samples),
            "echo_median_ms": statistics.median(samples) * 1000,
            "echo_p99_ms": percentile(samples, 0.99) * 1000,
            "echo_max_ms": max(samples) * 1000,
            "throughput_mb_per_s": best["mb_per_s"],
            "throughput_bytes": best["bytes"],
            "throughput_runs_mb_per_s": [r["mb_per_s"] for r in rates[server.name]],
            "stopped_reader": await on_fresh_terminal(server, functools.partial(stopped_reader, pids=server.pids)),
        }
    return results


# -- the servers -------------------------------------------------------------------------------
def terminado_version() -> str:
    return importlib.metadata.version("terminado")


@contextmanager
def terminado_server() -> Iterator[tuple[str, int]]:
    """terminado on a loopback port, its shell using busybox's applets; yields (url, pid)."""
    with tempfile.TemporaryDirectory(prefix="pg-bench-terminado-") as applets:
        subprocess.run(["/bin/busybox", "--install", "-s", applets], check=True)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.terminado_server", str(port), applets],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"terminado did not start: {line}{proc.stdout.read() if proc.stdout else ''}")
            yield f"ws://127.0.0.1:{port}/websocket", proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def stack_server_pids(stack: Stack) -> list[int]:
    """The processes that carry Playground's terminals: Daphne, the agent and the keeper."""
    pids = [stack.pid_of(part) for part in ("daphne", "agent", "keeper")]
    if None in pids:
        raise RuntimeError(f"a part of the stack is not running: {pids}\n{stack.log_tail()}")
    return [pid for pid in pids if pid is not None]


def playground_server(stack: Stack) -> Server:
    """Playground's terminals, one new session each (the stack's sessions are ended by the caller)."""

    async def open_client() -> TerminalClient:
        session = await asyncio.to_thread(stack.start_session)
        return await PlaygroundClient.open(stack.terminal_url(session))

    return Server("playground", open_client, stack_server_pids(stack))


def run(keystrokes: int) -> dict[str, Any]:
    """Playground and terminado, both running, measured in this run; with ratios against terminado."""
    stack = Stack.create()
    stack.start()
    try:
        with terminado_server() as (url, pid):
            peer = Server("terminado", lambda: TerminadoClient.open(url), [pid])
            results = asyncio.run(compare([playground_server(stack), peer], keystrokes))
    finally:
        stack.end_started_sessions()
        stack.stop()
    ours, theirs = results["playground"], results["terminado"]
    results["ratios"] = {
        "echo_median_terminado_over_playground": theirs["echo_median_ms"] / ours["echo_median_ms"],
        "echo_p99_terminado_over_playground": theirs["echo_p99_ms"] / ours["echo_p99_ms"],
        "throughput_playground_over_terminado": ours["throughput_mb_per_s"] / theirs["throughput_mb_per_s"],
    }
    return {**results, "load_average": os.getloadavg()[0]}


def target_met(results: dict[str, Any]) -> dict[str, bool]:
    """Issue #5's targets: echo median and p99 no worse than terminado, throughput at least
    terminado's, memory growth under 32 MiB while a reader is stopped."""
    ours, theirs = results["playground"], results["terminado"]
    return {
        "echo_median": ours["echo_median_ms"] <= theirs["echo_median_ms"],
        "echo_p99": ours["echo_p99_ms"] <= theirs["echo_p99_ms"],
        "throughput": ours["throughput_mb_per_s"] >= theirs["throughput_mb_per_s"],
        "stopped_reader_memory": ours["stopped_reader"]["rss_growth_mib"] < 32,
    }


def print_table(results: dict[str, Any]) -> None:
    """The comparison as ``make bench`` prints it."""
    ours, theirs, met = results["playground"], results["terminado"], target_met(results)
    rows = [
        (f"echo median ({ours['echo_keystrokes']} keystrokes)", "echo_median_ms", "ms", met["echo_median"]),
        ("echo p99", "echo_p99_ms", "ms", met["echo_p99"]),
        ("throughput (base64 of 256 MiB)", "throughput_mb_per_s", "MB/s", met["throughput"]),
    ]
    print(f"  {'':<38} {'playground':>12} {'terminado':>12}   target", flush=True)
    for label, key, unit, ok in rows:
        print(
            f"  {label:<38} {ours[key]:8.2f} {unit:<4}{theirs[key]:8.2f} {unit:<4}  {'met' if ok else 'MISSED'}",
            flush=True,
        )
    growth = [r["stopped_reader"]["rss_growth_mib"] for r in (ours, theirs)]
    taken = [r["stopped_reader"]["received_mib"] for r in (ours, theirs)]
    print(
        f"  {f'memory growth, reader stopped {STOP_SECONDS:.0f} s':<38} {growth[0]:8.1f} MiB {growth[1]:8.1f} MiB  "
        f"{'met' if met['stopped_reader_memory'] else 'MISSED'} (< 32 MiB)",
        flush=True,
    )
    print(f"  {'output let through meanwhile':<38} {taken[0]:8.1f} MiB {taken[1]:8.1f} MiB", flush=True)
    print(
        "  ratios: "
        + ", ".join(f"{k} = {v:.2f}x" for k, v in results["ratios"].items())
        + f"; load average {results['load_average']:.1f}",
        flush=True,
    )
