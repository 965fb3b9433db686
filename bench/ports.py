"""Port links (issue 16) against Debian's nginx proxying the same node port, in one run.

A stack of the docker image runs one session whose node (a real sandbox, owned by that session
in the database) serves, on its own address:

- ``busybox httpd`` on port 8080 (it forks a process per connection and closes each after one
  response, so through any proxy every request is a new upstream connection and a fork);
- ``websocketd --staticdir`` on port 8081 (Go's net/http: keep-alive, sendfile), the "fast"
  server, so that the proxies rather than the node's server are what is measured;
- ``websocketd --port=9000 cat``, a websocket echo server (one ``cat`` per connection).

Each is reached three ways: **direct** (the node's address, from the host), through **nginx**
(``NGINX_CONF``: one worker per core, keep-alive to the client, an upstream keep-alive pool as a
reverse proxy is commonly set up, websocket upgrade headers) and through **playground**, the port
proxy the launcher runs (``python -m playground.ports``, the host-form link of a shared port).
Measured, alternating the targets round by round so that the machine's load weighs on all alike:

- requests per second for a small page (``SMALL_PAGE_BYTES``) under ``wrk`` (keep-alive);
- MB/s of a ``BIG_FILE_MB`` MB download;
- the median latency of one request (sequential, one keep-alive connection per target, after
  warm-up), and what each proxy adds to the direct request's median;
- ``BENCH_PORTS_WEBSOCKETS`` websocket connections at once, each sending
  ``BENCH_PORTS_MESSAGES`` messages one after another and waiting for each echo: lost messages
  and the round trip's p50 and p99.

The issue's targets: rps and MB/s each >= 0.8x nginx's, added median latency <= 1 ms, no
message lost, checked on the fast server's figures (busybox httpd's are printed beside them:
its fork and connection per request weigh on every target alike). nginx runs from a temporary
directory (its config, logs, temp files and pid) and is stopped at the end; the stack is
stopped and what it left on the host counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench import crowd, docker
from bench.measuring import percentile
from tests import dockerkit
from tests.stack import Stack, Terminal, free_port
from tests.waiting import eventually

SMALL_PAGE_BYTES = 600
BIG_FILE_MB = 100
MB = 1000**2
BUSYBOX_PORT, FAST_PORT, ECHO_PORT = 8080, 8081, 9000


@dataclass(frozen=True)
class Load:
    """How wrk loads a server: ``rounds`` measured rounds of ``seconds`` each per target, after
    a warm-up round of ``warmup`` seconds (none if 0), with ``connections`` connections; with
    ``drain``, each run waits first until the host holds few connections to the node's port in
    TIME_WAIT (``drained``)."""

    rounds: int
    seconds: float
    connections: int
    warmup: float
    drain: bool = False


# The fast server first: it warms both proxies up. busybox httpd answers each request on a new
# connection, which its client (wrk direct, nginx, the port proxy) closes, leaving a TIME_WAIT on
# the host; each connect then searches the host's ephemeral ports (about 28000) past them, which
# costs the connecting process CPU, and past about 28000 connections a minute new ones stall. So
# the one that ran last paid the most (in one run every target fell from about 5000 req/s to 100-500,
# direct included): busybox gets one short round per target, each after the last one's drained.
SERVERS = {
    "websocketd_static": (FAST_PORT, Load(rounds=3, seconds=5, connections=50, warmup=2)),
    "busybox_httpd": (BUSYBOX_PORT, Load(rounds=1, seconds=2, connections=10, warmup=0, drain=True)),
}
TIME_WAIT_LEFT = 500  # connections to the node's port in TIME_WAIT that a drained run starts with
DRAIN_TIMEOUT = 90.0  # seconds to wait for them (the kernel keeps a TIME_WAIT 60 s)
WRK_TIMEOUT = 10  # seconds before wrk counts a request failed (busybox httpd's small backlog drops SYNs)
DOWNLOADS = 5  # measured downloads of each target, after one warm-up
LATENCY_SAMPLES = 1000  # sequential requests of each target, after LATENCY_WARMUP
LATENCY_WARMUP = 100
ECHO_TIMEOUT = 10.0  # seconds an echo may take before its message counts as lost
TARGETS = {"rps_ratio": 0.8, "mb_s_ratio": 0.8, "added_latency_ms": 1.0, "lost_messages": 0}
PAGE = "<!doctype html><title>port link bench</title><p>" + "x" * SMALL_PAGE_BYTES
SMALL_PAGE = PAGE[: SMALL_PAGE_BYTES - len("</p>\n")] + "</p>\n"

# The node's files, written by the agent's run op; its servers, typed at the node's first shell
# as a visitor would (whatever a run op starts ends with it); then the run op waits for them.
NODE_FILES = f"""
mkdir -p /www
printf '%s' '{SMALL_PAGE}' >/www/small.html
head -c {BIG_FILE_MB * MB} /dev/zero >/www/big.bin
"""
NODE_SERVERS = (
    f"setsid busybox httpd -f -p {BUSYBOX_PORT} -h /www </dev/null >/dev/null 2>&1 & "
    f"setsid websocketd --port={FAST_PORT} --staticdir=/www --loglevel=fatal cat </dev/null >/dev/null 2>&1 & "
    f"setsid websocketd --port={ECHO_PORT} --loglevel=fatal cat </dev/null >/dev/null 2>&1 & true"
)
NODE_ANSWERS = f"""
for url in {BUSYBOX_PORT}/small.html {FAST_PORT}/small.html {ECHO_PORT}/; do
  timeout 10 sh -c "until curl -s -o /dev/null http://127.0.0.1:$url; do sleep 0.1; done" || exit 1
done
"""
# nginx as a reverse proxy is commonly set up: a worker per core, HTTP/1.1 keep-alive to the
# client (75 s, up to 1000 requests a connection: nginx's defaults), a pool of idle upstream
# connections (keepalive 32, HTTP/1.1, the Connection header cleared except for websocket
# upgrades), response buffering on (nginx's default). No access log: the proxy under test keeps
# none either. Everything it writes is under its prefix, a temporary directory.
NGINX_CONF = """
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
{servers}
}}
"""
NGINX_SERVER = """
    upstream node_{port} {{ server {address}:{port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://node_{port};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
        }}
    }}
"""


@dataclass(frozen=True)
class Target:
    """Where a client connects (``ip``, ``port``), the Host header it sends, and the processes
    of the proxy in between (none for direct requests), whose CPU time is read around each load."""

    name: str
    ip: str
    port: int
    host: str
    pids: tuple[int, ...] = ()

    def cpu_seconds(self) -> float:
        """CPU time its proxy's processes have used so far."""
        return sum(crowd.cpu_seconds(pid) for pid in self.pids)


# -- the node, nginx and the port links ------------------------------------------------------------
def node_of(stack: Stack, session: dict[str, Any]) -> tuple[str, str]:
    """The sandbox id and address of the session's only node, once it runs."""

    def running() -> bool:
        return all(i["state"] == "running" for i in stack.shown(session)["instances"])

    eventually(running, "the session's node runs", 120, 0.2, explain=stack.log_tail)
    listing = asyncio.run(dockerkit.agent(stack).request("list"))["sandboxes"]
    if len(listing) != 1:
        raise RuntimeError(f"expected the session's one sandbox, the agent runs {len(listing)}")
    return listing[0]["id"], listing[0]["address"]


def start_servers(stack: Stack, session: dict[str, Any], sandbox_id: str) -> None:
    """Write the node's files, start its servers at its first shell, and wait until they answer."""
    docker.inside(stack, sandbox_id, NODE_FILES)

    async def type_servers() -> None:
        terminal = await Terminal.open(stack.terminal_url(session))
        try:
            await terminal.run(NODE_SERVERS, 20)
        finally:
            await terminal.close()

    asyncio.run(type_servers())
    docker.inside(stack, sandbox_id, NODE_ANSWERS)


def share(stack: Stack, session: dict[str, Any], port: int) -> None:
    """Share the node's ``port`` (PATCH of its port JSON), so that its host-form link opens without a cookie."""
    response = stack.request(
        "PATCH",
        f"/api/sessions/{session['id']}/instances/node1/ports/{port}/",
        {"shared": True},
        headers={"Authorization": f"Session {session['key']}"},
    )
    if response.status != 200:
        raise RuntimeError(f"sharing port {port} failed: {response.status} {response.body!r}")


def playground_target(stack: Stack, session: dict[str, Any], port: int) -> Target:
    """The host-form port link of node1's ``port``, as a client on the host reaches it; its
    processes are the proxy's and its workers' (PLAYGROUND_PORTS_WORKERS)."""
    short_id = uuid.UUID(session["id"]).hex[:20]
    host = f"{port}-node1-{short_id}.localhost:{stack.ports_port}"
    proxy = stack.pid_of("ports")
    if proxy is None:
        raise RuntimeError(f"the stack runs no port proxy (python -m playground.ports):\n{stack.log_tail()}")
    return Target("playground", "127.0.0.1", stack.ports_port, host, (proxy, *docker.descendants(proxy)))


@contextlib.contextmanager
def nginx_proxying(address: str, ports: list[int]) -> Iterator[dict[int, Target]]:
    """Debian's nginx proxying ``address``'s ``ports``, each on a loopback port of its own, for
    the block; its targets by node port. Stopped (SIGQUIT, then SIGKILL) and its directory removed after."""
    prefix = Path(tempfile.mkdtemp(prefix="pg-bench-nginx-"))
    prefix.chmod(0o755)  # its workers (nobody) write their temp files there
    listen = {port: free_port() for port in ports}
    servers = "".join(NGINX_SERVER.format(address=address, port=p, listen=listen[p]) for p in ports)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, servers=servers))
    command = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    try:
        subprocess.run([*command, "-t", "-q"], check=True)
        proc = subprocess.Popen([*command, "-g", "daemon off;"])
        workers: list[int] = []
        try:
            eventually(lambda: (prefix / "nginx.pid").exists(), "nginx writes its pid file", 10, 0.05)
            workers = eventually(
                lambda: docker.descendants(proc.pid),
                "nginx starts a worker per core",
                10,
                0.05,
                until=lambda found: len(found) >= (os.cpu_count() or 1),
            )
            pids = (proc.pid, *workers)
            yield {p: Target("nginx", "127.0.0.1", listen[p], f"127.0.0.1:{listen[p]}", pids) for p in ports}
        finally:
            stop_nginx(proc, workers)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def stop_nginx(proc: subprocess.Popen[bytes], workers: list[int]) -> None:
    """Stop nginx gracefully (SIGQUIT), else kill it; its workers too if any outlived it."""
    proc.send_signal(signal.SIGQUIT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in workers:
        if docker.read(f"/proc/{pid}/cmdline").startswith("nginx"):
            os.kill(pid, signal.SIGKILL)


# -- requests per second ---------------------------------------------------------------------------
def wrk(target: Target, path: str, seconds: float, connections: int) -> tuple[float, float, int]:
    """Requests per second ``wrk`` measured on ``target``'s ``path``, the CPU cores the target's
    proxy used meanwhile, and the requests that failed (socket errors, timeouts beyond WRK_TIMEOUT,
    answers other than 2xx and 3xx); RuntimeError if wrk measured nothing."""
    cpu, started = target.cpu_seconds(), time.perf_counter()
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={WRK_TIMEOUT}s",
            "-H",
            f"Host: {target.host}",
            f"http://{target.ip}:{target.port}{path}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if result.returncode != 0 or rate is None:
        raise RuntimeError(f"wrk on {target.name} {path} went wrong:\n{result.stdout}{result.stderr}")
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", result.stdout)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return float(rate.group(1)), (target.cpu_seconds() - cpu) / (time.perf_counter() - started), errors


def drained(address: str, port: int) -> None:
    """Wait until the host holds at most TIME_WAIT_LEFT connections to ``address:port`` in
    TIME_WAIT (DRAIN_TIMEOUT at most: then go on)."""

    def waiting() -> int:
        listed = subprocess.run(
            ["ss", "-Htan", "state", "time-wait", "dst", f"{address}:{port}"], capture_output=True, text=True
        )
        return len(listed.stdout.splitlines())

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while waiting() > TIME_WAIT_LEFT and time.monotonic() < deadline:
        time.sleep(1)


def requests_per_second(targets: list[Target], load: Load) -> dict[str, Any]:
    """``wrk`` on the small page of each target, one after another per round; the median of the
    load's rounds (after its warm-up round), each round's figure, the median CPU cores the proxy
    used, and the failed requests of all rounds. ``targets[0]`` is the direct one (the node's
    address and port, whose TIME_WAITs a draining load waits for)."""
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    cores: dict[str, list[float]] = {t.name: [] for t in targets}
    errors = dict.fromkeys(rates, 0)
    for round_ in range(-1 if load.warmup else 0, load.rounds):
        for target in targets:
            if load.drain:
                drained(targets[0].ip, targets[0].port)
            rate, used, failed = wrk(
                target, "/small.html", load.warmup if round_ < 0 else load.seconds, load.connections
            )
            if round_ >= 0:
                rates[target.name].append(rate)
                cores[target.name].append(used)
                errors[target.name] += failed
    return {
        name: {
            "median": statistics.median(r),
            "rounds": r,
            "proxy_cpu_cores": statistics.median(cores[name]),
            "failed_requests": errors[name],
        }
        for name, r in rates.items()
    }


# -- download --------------------------------------------------------------------------------------
def download(target: Target) -> float:
    """Seconds to GET the big file through ``target``, from the request to its last byte (checked whole)."""
    buffer = bytearray(1 << 20)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(target.ip, target.port, timeout=60)
    try:
        connection.request("GET", "/big.bin", headers={"Host": target.host})
        response = connection.getresponse()
        received = 0
        while count := response.readinto(buffer):
            received += count
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    if response.status != 200 or received != BIG_FILE_MB * MB:
        raise RuntimeError(f"download through {target.name}: status {response.status}, {received} bytes")
    return elapsed


def download_rates(targets: list[Target]) -> dict[str, Any]:
    """MB/s of the big file through each target, alternately: the median of DOWNLOADS (after one warm-up)."""
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    for run in range(-1, DOWNLOADS):
        for target in targets:
            rate = BIG_FILE_MB / download(target)
            if run >= 0:
                rates[target.name].append(rate)
    return {name: {"median_mb_s": statistics.median(r), "runs": r} for name, r in rates.items()}


# -- latency ---------------------------------------------------------------------------------------
def latencies(targets: list[Target]) -> dict[str, Any]:
    """One small-page request at a time to each target in turn, on a keep-alive connection per
    target (a new one whenever the server closed it): the median and p99 of each, in ms, after
    LATENCY_WARMUP requests each; and what each proxy adds to the direct median."""
    connections = {t.name: http.client.HTTPConnection(t.ip, t.port, timeout=10) for t in targets}
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    try:
        for i in range(-LATENCY_WARMUP, LATENCY_SAMPLES):
            for target in targets:
                connection = connections[target.name]
                started = time.perf_counter()
                connection.request("GET", "/small.html", headers={"Host": target.host})
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200 or len(body) != len(SMALL_PAGE):
                    raise RuntimeError(f"{target.name}: status {response.status}, {len(body)} bytes")
                if i >= 0:
                    samples[target.name].append(elapsed)
    finally:
        for connection in connections.values():
            connection.close()
    result: dict[str, Any] = {
        name: {"median_ms": statistics.median(s) * 1000, "p99_ms": percentile(s, 0.99) * 1000}
        for name, s in samples.items()
    }
    direct = result["direct"]["median_ms"]
    result["added_median_ms"] = {name: r["median_ms"] - direct for name, r in result.items() if name != "direct"}
    return result


# -- websockets ------------------------------------------------------------------------------------
@dataclass
class EchoRun:
    """What ``echo_load`` saw of one target: connections that failed to open, messages sent and
    lost, and each echoed message's round trip (seconds)."""

    failed_to_open: int = 0
    sent: int = 0
    lost: int = 0
    round_trips: list[float] = field(default_factory=list)

    def add(self, other: EchoRun) -> None:
        self.failed_to_open += other.failed_to_open
        self.sent += other.sent
        self.lost += other.lost
        self.round_trips += other.round_trips


async def echo_load(target: Target, connections: int, messages: int) -> EchoRun:
    """``connections`` websockets to ``target``'s echo server, all open before any sends; then
    each sends ``messages`` messages, one at a time, waiting for each echo. A message whose echo
    does not come back (ECHO_TIMEOUT, a closed connection) or comes back different is lost, and
    so are the messages of a connection that failed to open."""
    opened: list[ClientConnection] = []
    run = EchoRun()

    async def open_one() -> None:
        try:
            opened.append(
                await connect(
                    f"ws://{target.host}/",
                    host=target.ip,
                    port=target.port,
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    open_timeout=30,
                )
            )
        except (OSError, TimeoutError, WebSocketException):
            run.failed_to_open += 1
            run.lost += messages

    async def talk(number: int, ws: ClientConnection) -> None:
        for m in range(messages):
            text = f"{number}-{m}"
            started = time.perf_counter()
            try:
                await ws.send(text)
                reply = await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT)
            except (TimeoutError, ConnectionClosed):
                run.lost += messages - m
                return
            if reply != text:
                run.lost += 1
                continue
            run.round_trips.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(open_one() for _ in range(connections)))
        await asyncio.gather(*(talk(n, ws) for n, ws in enumerate(opened)))
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    run.sent = connections * messages
    return run


def echo_loads(targets: list[Target], connections: int, messages: int) -> dict[str, Any]:
    """``echo_load`` on each target in two passes, the second in reverse order (so that neither
    goes first alone), each with half the messages, after a warm-up of 2 messages each (the
    server's cat processes started once); per target the connections, messages sent and lost,
    connections that failed to open, and the round trip's p50 and p99 in ms."""
    for target in targets:
        asyncio.run(echo_load(target, connections, 2))
    runs = {t.name: EchoRun() for t in targets}
    for order, count in ((targets, messages // 2), (targets[::-1], messages - messages // 2)):
        for target in order:
            runs[target.name].add(asyncio.run(echo_load(target, connections, count)))
    return {
        name: {
            "connections": connections,
            "failed_to_open": run.failed_to_open,
            "messages_sent": run.sent,
            "lost_messages": run.lost,
            "round_trip_p50_ms": percentile(run.round_trips, 0.5) * 1000 if run.round_trips else None,
            "round_trip_p99_ms": percentile(run.round_trips, 0.99) * 1000 if run.round_trips else None,
        }
        for name, run in runs.items()
    }


# -- the section -----------------------------------------------------------------------------------
def run(connections: int, messages: int) -> dict[str, Any]:
    """Every measurement above in one stack and one nginx; the results, ratios and targets met."""
    stack = docker.docker_stack()
    results: dict[str, Any] = {"nginx_conf": NGINX_CONF.strip() + "\n" + NGINX_SERVER.strip()}
    try:
        session = stack.start_session(image="docker")
        sandbox_id, address = node_of(stack, session)
        start_servers(stack, session, sandbox_id)
        for port in (*(port for port, _ in SERVERS.values()), ECHO_PORT):
            share(stack, session, port)
        with nginx_proxying(address, [*(port for port, _ in SERVERS.values()), ECHO_PORT]) as nginx:

            def targets(port: int) -> list[Target]:
                return [
                    Target("direct", address, port, f"{address}:{port}"),
                    nginx[port],
                    playground_target(stack, session, port),
                ]

            for server, (port, load) in SERVERS.items():
                print(
                    f"  node server {server} (port {port}; wrk: {load.connections} connections, {load.rounds} "
                    f"rounds of {load.seconds:.0f} s):",
                    flush=True,
                )
                results[server] = measured = {
                    "rps": requests_per_second(targets(port), load),
                    "download": download_rates(targets(port)),
                    "latency": latencies(targets(port)),
                }
                print_server(measured)
            results["websockets"] = echo_loads(targets(ECHO_PORT), connections, messages)
            print_websockets(results["websockets"])
    finally:
        results["left_on_host"] = docker.stop_stack(stack)
    results["verdict"] = verdict(results)
    print_verdict(results["verdict"], results["left_on_host"])
    return results


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against the fast server's figures (the proxies' own cost; busybox
    httpd's fork per request bounds both alike) and the websocket run through the port link."""
    fast = results["websocketd_static"]
    rps = fast["rps"]["playground"]["median"] / fast["rps"]["nginx"]["median"]
    mb_s = fast["download"]["playground"]["median_mb_s"] / fast["download"]["nginx"]["median_mb_s"]
    added = fast["latency"]["added_median_ms"]["playground"]
    lost = results["websockets"]["playground"]["lost_messages"]
    return {
        "rps_ratio": rps,
        "mb_s_ratio": mb_s,
        "added_latency_ms": added,
        "lost_messages": lost,
        "met": {
            "rps_ratio": rps >= TARGETS["rps_ratio"],
            "mb_s_ratio": mb_s >= TARGETS["mb_s_ratio"],
            "added_latency_ms": added <= TARGETS["added_latency_ms"],
            "lost_messages": lost == TARGETS["lost_messages"],
        },
    }


def print_server(measured: dict[str, Any]) -> None:
    rps, download, latency = measured["rps"], measured["download"], measured["latency"]
    for name in ("direct", "nginx", "playground"):
        failed = rps[name]["failed_requests"]
        print(
            f"    {name:<11} {rps[name]['median']:8.0f} req/s (proxy on {rps[name]['proxy_cpu_cores']:.2f} cores"
            + (f", {failed} requests failed)   " if failed else ")   ")
            + f"{download[name]['median_mb_s']:7.0f} MB/s   "
            f"latency median {latency[name]['median_ms']:6.3f} ms, p99 {latency[name]['p99_ms']:6.3f} ms",
            flush=True,
        )
    print(
        f"    playground/nginx: rps {rps['playground']['median'] / rps['nginx']['median']:.2f}x, "
        f"MB/s {download['playground']['median_mb_s'] / download['nginx']['median_mb_s']:.2f}x; added median "
        f"latency over direct: playground {latency['added_median_ms']['playground']:.3f} ms, "
        f"nginx {latency['added_median_ms']['nginx']:.3f} ms",
        flush=True,
    )


def print_websockets(results: dict[str, dict[str, Any]]) -> None:
    for name, r in results.items():
        p50, p99 = r["round_trip_p50_ms"], r["round_trip_p99_ms"]
        print(
            f"  websockets {name:<11} {r['connections']} connections, {r['messages_sent']} messages: "
            f"{r['lost_messages']} lost, {r['failed_to_open']} failed to open; round trip "
            + (f"p50 {p50:.2f} ms, p99 {p99:.2f} ms" if p50 is not None else "none"),
            flush=True,
        )


def print_verdict(result: dict[str, Any], left: dict[str, list[str]]) -> None:
    met = result["met"]
    print(
        f"  targets: rps {result['rps_ratio']:.2f}x nginx (>= 0.8: {'met' if met['rps_ratio'] else 'MISSED'}), "
        f"MB/s {result['mb_s_ratio']:.2f}x (>= 0.8: {'met' if met['mb_s_ratio'] else 'MISSED'}), added median "
        f"latency {result['added_latency_ms']:.3f} ms (<= 1: {'met' if met['added_latency_ms'] else 'MISSED'}), "
        f"{result['lost_messages']} messages lost ({'met' if met['lost_messages'] else 'MISSED'}); "
        f"left on the host: {left or 'nothing'}",
        flush=True,
    )


def websocket_settings() -> tuple[int, int]:
    """BENCH_PORTS_WEBSOCKETS (200) connections, BENCH_PORTS_MESSAGES (100) messages each."""
    return int(os.environ.get("BENCH_PORTS_WEBSOCKETS", "200")), int(os.environ.get("BENCH_PORTS_MESSAGES", "100"))
