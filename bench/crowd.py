"""Many terminals typing at once: every keystroke must come back, once, in order.

Each terminal is its own session. Its shell runs ``dd bs=1`` in raw mode, which echoes every
byte it reads, and the client types its own sequence of keystrokes (one byte each, from a
62-character cycle shifted per terminal, so a lost, repeated or swapped keystroke changes what
comes back) at a steady rate. A keystroke's latency is the time from sending it to receiving
its echo; the echo stream must equal the typed stream exactly.
"""

from __future__ import annotations

import asyncio
import os
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.terminals import PROMPT, PlaygroundClient, TerminalClient, percentile
from tests.stack import Stack

ALPHABET = (string.ascii_letters + string.digits).encode()


def keystrokes(terminal: int, count: int) -> bytes:
    """The sequence terminal number ``terminal`` types: no two neighbours alike."""
    return bytes(ALPHABET[(terminal * 7 + i) % len(ALPHABET)] for i in range(count))


@dataclass
class Typist:
    """One terminal's run: what it typed, what came back, and each keystroke's echo latency."""

    typed: bytes
    echoed: bytearray = field(default_factory=bytearray)
    sent_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    error: str = ""

    def problem(self) -> str:
        """Empty when every keystroke came back exactly once and in order, else what went wrong."""
        if self.error:
            return self.error
        if bytes(self.echoed) == self.typed:
            return ""
        first = next(
            (i for i, (a, b) in enumerate(zip(self.typed, self.echoed, strict=False)) if a != b),
            min(len(self.typed), len(self.echoed)),
        )
        return (
            f"echo differs from the keystrokes at {first} of {len(self.typed)} "
            f"(typed {self.typed[first : first + 12]!r}, echoed {bytes(self.echoed[first : first + 12])!r}, "
            f"{len(self.echoed)} bytes echoed)"
        )


async def type_and_check(client: TerminalClient, typist: Typist, rate: float, delay: float) -> None:
    """Type ``typist.typed`` at ``rate`` keystrokes a second after ``delay`` seconds, collecting the echo."""
    count = len(typist.typed)
    await client.type(f"stty raw -echo; echo C''GO; dd bs=1 count={count} 2>/dev/null; stty sane; echo C''DONE\n")
    await client.expect(b"CGO\n", 60)
    await asyncio.sleep(delay)
    receiver = asyncio.create_task(_collect(client, typist))
    start = time.perf_counter()
    try:
        for i in range(count):
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            typist.sent_at.append(time.perf_counter())
            await client.type(typist.typed[i : i + 1].decode())
        await asyncio.wait_for(asyncio.shield(receiver), 60)
    except TimeoutError:
        typist.error = f"only {len(typist.echoed)} of {count} keystrokes echoed within 60 s after the last"
    finally:
        receiver.cancel()


async def _collect(client: TerminalClient, typist: Typist) -> None:
    """Receive the echo until ``C''DONE``; each new byte is the echo of the next keystroke."""
    count = len(typist.typed)
    echoed = typist.echoed
    echoed += client.pending
    client.pending.clear()
    while len(echoed) < count or b"CDONE" not in echoed[count:]:
        chunk = await client.read(120)
        now = time.perf_counter()
        for _ in range(min(len(chunk), max(0, count - len(echoed)))):
            if len(typist.latencies) < len(typist.sent_at):  # else an echo of nothing typed: see problem()
                typist.latencies.append(now - typist.sent_at[len(typist.latencies)])
        echoed += chunk
    del echoed[count:]


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) ``pid`` has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def crowd(
    open_client: Callable[[int], Awaitable[TerminalClient]],
    terminals: int,
    rate: float,
    seconds: float,
    servers: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``terminals`` terminals each typing ``rate`` keystrokes a second for ``seconds``; ``servers``
    (name -> pid) are the processes whose CPU use while typing is reported, in cores."""
    count = int(rate * seconds)
    typists = [Typist(keystrokes(i, count)) for i in range(terminals)]
    opened = time.perf_counter()
    clients = await asyncio.gather(*(open_client(i) for i in range(terminals)))
    try:
        await asyncio.gather(*(c.expect(PROMPT, 120) for c in clients))
        opened = time.perf_counter() - opened
        pids = {**(servers or {}), "client": os.getpid()}
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        typing = time.perf_counter()
        # Spread the terminals' keystrokes over one interval, as people do not type in step.
        await asyncio.gather(
            *(
                type_and_check(c, t, rate, i / terminals / rate)
                for i, (c, t) in enumerate(zip(clients, typists, strict=True))
            )
        )
        typing = time.perf_counter() - typing
        cores = {name: (cpu_seconds(pid) - cpu[name]) / typing for name, pid in pids.items()}
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    latencies = [x for t in typists for x in t.latencies]
    problems = [f"terminal {i}: {t.problem()}" for i, t in enumerate(typists) if t.problem()]
    return {
        "terminals": terminals,
        "rate_per_s": rate,
        "seconds": seconds,
        "keystrokes": count * terminals,
        "echoed": sum(len(t.echoed) for t in typists),
        "open_s": opened,
        "lost_or_reordered_terminals": len(problems),
        "problems": problems[:10],
        "echo_median_ms": percentile(latencies, 0.5) * 1000 if latencies else None,
        "echo_p99_ms": percentile(latencies, 0.99) * 1000 if latencies else None,
        "echo_max_ms": max(latencies) * 1000 if latencies else None,
        "cores_used": cores,
        "load_average": os.getloadavg()[0],
    }


def settings(terminals: int) -> dict[str, str]:
    """A stack with room for ``terminals`` sessions from one address (loopback is exempt from
    the per-address limits), with the sandboxes' addresses on a /24 of its own."""
    room = str(terminals + 10)
    return {"PLAYGROUND_MAX_SESSIONS": room, "PLAYGROUND_HOST_MAX_SANDBOXES": room}


def run(terminals: int, rate: float, seconds: float) -> dict[str, Any]:
    """The crowd on a fresh Playground; every session is ended afterwards."""
    if terminals > 240:
        raise ValueError(f"{terminals} terminals do not fit the stack's /24 of sandbox addresses (at most 240)")
    stack = Stack.create(**settings(terminals))
    stack.start()

    async def open_client(index: int) -> TerminalClient:
        session = await asyncio.to_thread(stack.start_session)
        return await PlaygroundClient.open(stack.terminal_url(session))

    try:
        servers = {part: stack.pid_of(part) or 0 for part in ("daphne", "agent")}
        return asyncio.run(crowd(open_client, terminals, rate, seconds, servers))
    except Exception:
        print(f"the crowd failed; the stack's log ends with:\n{stack.log_tail(40)}", flush=True)
        raise
    finally:
        stack.end_started_sessions()
        stack.wait_for_clean_host(timeout=120)
        stack.stop()


def print_summary(result: dict[str, Any]) -> None:
    """The crowd's line in ``make bench``'s table."""
    lost = result["lost_or_reordered_terminals"]
    print(
        f"  {result['keystrokes']} keystrokes, {result['echoed']} echoed; terminals with a lost or reordered "
        f"keystroke: {lost}{' (target 0: met)' if lost == 0 else ' (target 0: MISSED)'}",
        flush=True,
    )
    print(
        f"  echo median {result['echo_median_ms']:.1f} ms, p99 {result['echo_p99_ms']:.1f} ms, "
        f"max {result['echo_max_ms']:.1f} ms; {result['open_s']:.0f} s to open them all",
        flush=True,
    )
    cores = ", ".join(f"{name} {used:.2f}" for name, used in result["cores_used"].items())
    print(f"  cores used while typing: {cores}; load average {result['load_average']:.1f}", flush=True)
    for problem in result["problems"]:
        print(f"  problem: {problem}", flush=True)
