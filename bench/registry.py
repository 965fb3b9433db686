"""The registry mirror (issue #17): docker sandboxes pulling through the mirror's front from a
counting upstream, a docker-registry on loopback whose access log says how often it served each
blob (the mirror's store is its pull-through cache):

- **one pull**: one sandbox pulls an image the mirror has never seen (pushed to the upstream for
  that run alone), BENCH_RUNS times; the time of ``docker pull`` inside, and the upstream's GETs
  of the image's layer;
- **many pulls**: BENCH_REGISTRY_PULLERS docker sandboxes pull one such image at once; the median
  and slowest pull, and the upstream's GETs of its layer (the front coalesces them: what one pull
  costs, 2 with Distribution 2.8, against 1 + the pullers without it); then the same pulls again
  once the mirror holds the image (removed from each engine first), the peer that shows what the
  flight itself costs;
- **httpd**: the same sandboxes pull ``httpd`` at once (the seminar's image, seeded into the
  upstream by ``manage.py registry seed httpd``: two layers, debian's and Apache's); the median and
  slowest pull, and the upstream's GETs of each of its blobs; then one of them pulls it alone, three
  times (the mirror holding it), the peer of the 50.

The layer is a static busybox and BENCH_REGISTRY_LAYER_MB of random bytes. Everything started is
stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from bench import docker
from bench.measuring import percentile
from playground.registry.paths import mirror_root
from tests.imagekit import CACHE
from tests.mirrorkit import Image, blob_gets, push, sha256, start_registry, tiny_image
from tests.seedkit import registry_command
from tests.stack import Stack, Terminal

ENGINE_WAIT = 120.0  # seconds for every engine to answer, 50 starting on a loaded machine
# Typed at a sandbox's prompt: the pull timed by the sandbox's clock, then the image run once; its
# result line carries a marker of its own, so that it is found again in a reconnected terminal's replay.
PULL = (
    "s=$(date +%s%N); docker pull -q {name} >/dev/null 2>&1; r=$?; e=$(date +%s%N); "
    "docker run --rm {name} cat {file} >/dev/null 2>&1 || r=run$r; echo {marker}''=$r,$(( (e - s) / 1000 ))"
)
HTTPD_FILE = "/usr/local/apache2/htdocs/index.html"  # where the seeded httpd keeps its "It works!" page
PULL_TIMEOUT = 600.0


@dataclass
class Puller:
    """A docker sandbox's first terminal, opened again (``reconnects``) if Daphne drops it under load,
    as the page would: the shell goes on meanwhile, and the replay shows what it printed."""

    url: str
    terminal: Terminal
    reconnects: int = 0

    async def run(self, command: str, timeout: float) -> str:
        return await self.terminal.run(command, timeout)

    async def reopen(self) -> None:
        self.terminal = await Terminal.open(self.url, ping_interval=None)
        self.reconnects += 1


async def pull_seconds(puller: Puller, name: str, file: str = "/hello.txt") -> float:
    """How long ``docker pull name`` took at the puller's prompt (its sandbox's clock); the image is
    run once after (reading its ``file``)."""
    marker = f"P{time.monotonic_ns()}"
    await puller.terminal.type(PULL.format(name=name, file=file, marker=marker) + "\n")
    found = re.compile(rf"{marker}=(\w+),(\d+)".encode())
    deadline = time.monotonic() + PULL_TIMEOUT
    while (result := found.search(bytes(puller.terminal.output))) is None:
        left = deadline - time.monotonic()
        assert left > 0, f"the pull of {name} did not end within {PULL_TIMEOUT:.0f} s"
        try:
            await puller.terminal.receive_one(left)
        except websockets.ConnectionClosed:
            await puller.reopen()
    status, micros = result.group(1).decode(), int(result.group(2))
    assert status == "0", f"pull of {name} failed: {status}"
    return micros / 1e6


async def docker_pullers(stack: Stack, count: int) -> list[Puller]:
    """The first terminals of ``count`` new sessions of the docker image, once each engine answers.

    Sessions, not the agent's ``run`` op: the agent runs at most 32 scripts at once on a host, and
    the pulls must all be under way together."""
    sessions = [stack.start_session(image="docker") for _ in range(count)]
    # No keepalive pings of the bench's own: with 50 engines unpacking httpd on 2 cores, Daphne may
    # answer one later than websockets' 20 s, which would end a terminal whose pull goes on.
    urls = [stack.terminal_url(session) for session in sessions]
    pullers = [Puller(url, await Terminal.open(url, ping_interval=None)) for url in urls]
    ready = "until docker info >/dev/null 2>&1; do sleep 0.2; done; echo engine-ready"
    for puller in pullers:
        assert "engine-ready" in await puller.run(ready, ENGINE_WAIT)
    return pullers


async def measure(stack: Stack, upstream: Any, runs: int, pullers: int, padding: int) -> dict[str, Any]:
    terminals = await docker_pullers(stack, pullers)
    try:
        one_times, one_gets = [], []
        for i in range(runs):
            image = fresh_image(upstream.address, f"bench/one-{i}", padding)
            one_times.append(await pull_seconds(terminals[0], f"bench/one-{i}"))
            one_gets.append(blob_gets(upstream.log_path)[sha256(image.layer)])
        image = fresh_image(upstream.address, "bench/many", padding)
        many_times = await asyncio.gather(*(pull_seconds(t, "bench/many") for t in terminals))
        many_gets = blob_gets(upstream.log_path)[sha256(image.layer)]
        # The same again once the mirror holds it: what the pulls cost without any upstream or flight.
        await asyncio.gather(*(t.run("docker rmi -f bench/many >/dev/null 2>&1; echo removed", 120) for t in terminals))
        warm_times = await asyncio.gather(*(pull_seconds(t, "bench/many") for t in terminals))
        await asyncio.gather(*(t.run("docker rmi -f bench/many >/dev/null 2>&1; echo removed", 120) for t in terminals))
        httpd_times = await asyncio.gather(*(pull_seconds(t, "httpd", HTTPD_FILE) for t in terminals))
        httpd_gets = {digest: blob_gets(upstream.log_path)[digest] for digest in httpd_blobs(upstream.address)}
        # The peer: one sandbox alone pulls httpd again (removed from its engine), the mirror holding it.
        await terminals[0].run("docker rmi -f httpd >/dev/null 2>&1; echo removed", 120)
        httpd_alone = [await pull_seconds(terminals[0], "httpd", HTTPD_FILE)]
        for _ in range(2):
            await terminals[0].run("docker rmi -f httpd >/dev/null 2>&1; echo removed", 120)
            httpd_alone.append(await pull_seconds(terminals[0], "httpd", HTTPD_FILE))
    finally:
        for puller in terminals:
            await puller.terminal.close()
        stack.end_started_sessions()
    return {
        "layer_mb": round(len(image.layer) / 1e6, 1),
        "one_pull": {"runs": runs, "median_ms": statistics.median(one_times) * 1000, "upstream_layer_gets": one_gets},
        "many_pulls": {**spread(many_times), "pullers": pullers, "upstream_layer_gets": many_gets},
        "many_pulls_held": {
            **spread(warm_times),
            "pullers": pullers,
            "upstream_layer_gets": blob_gets(upstream.log_path)[sha256(image.layer)] - many_gets,
        },
        "httpd_pulls": {**spread(httpd_times), "pullers": pullers, "upstream_blob_gets": httpd_gets},
        "httpd_alone": {**spread(httpd_alone), "runs": len(httpd_alone)},
        "terminals_reopened": sum(puller.reconnects for puller in terminals),
    }


def spread(seconds: list[float]) -> dict[str, float]:
    """The median, 95th percentile and slowest of ``seconds``, in milliseconds."""
    return {
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": percentile(list(seconds), 0.95) * 1000,
        "max_ms": max(seconds) * 1000,
    }


def httpd_blobs(address: str) -> list[str]:
    """The digests of the upstream's httpd:latest blobs: its layers, then its config."""
    request = urllib.request.Request(
        f"http://{address}/v2/library/httpd/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        manifest = json.load(answer)
    return [layer["digest"] for layer in manifest["layers"]] + [manifest["config"]["digest"]]


def fresh_image(address: str, name: str, padding: int) -> Image:
    """An image nobody pulled yet, pushed to the upstream as ``name:latest``."""
    image = tiny_image(name, padding)
    push(address, name, "latest", image)
    return image


def run(runs: int, pullers: int, layer_mb: int) -> dict[str, Any]:
    """The section: measured, printed, returned."""
    print(
        f"registry mirror: docker pull of an image the mirror has not seen, alone ({runs} runs) and by {pullers} "
        "docker sandboxes at once, from a counting upstream (a docker-registry on loopback):",
        flush=True,
    )
    result = measured(runs, pullers, layer_mb)
    print_table(result)
    return result


def measured(runs: int, pullers: int, layer_mb: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pg-bench-registry-"))
    # The upstream holds the seminar's httpd, seeded as make run seeds the mirror (var/cache's trees).
    registry_command(work / "seed", CACHE, "seed", "httpd", timeout=1200)
    upstream = start_registry(mirror_root(work / "seed"), work)
    try:
        stack = docker.docker_stack(
            PLAYGROUND_REGISTRY_UPSTREAM=f"http://{upstream.address}",
            PLAYGROUND_HOST_MAX_SANDBOXES=str(pullers + 10),
            PLAYGROUND_MAX_SESSIONS=str(pullers + 10),
        )
        try:
            return asyncio.run(measure(stack, upstream, runs, pullers, layer_mb * 1024**2))
        finally:
            stack.stop()
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)


def print_table(result: dict[str, Any]) -> None:
    one, many, held = result["one_pull"], result["many_pulls"], result["many_pulls_held"]
    print(
        f"  one pull of a {result['layer_mb']} MB layer       median {one['median_ms']:7.0f} ms   "
        f"upstream GETs of the layer per pull: {one['upstream_layer_gets']}",
        flush=True,
    )
    print(
        f"  {many['pullers']} pulls of one image at once   median {many['median_ms']:7.0f} ms   "
        f"p95 {many['p95_ms']:7.0f} ms   slowest {many['max_ms']:7.0f} ms   "
        f"upstream GETs of the layer: {many['upstream_layer_gets']} (without coalescing: 1 + {many['pullers']})",
        flush=True,
    )
    print(
        f"  {held['pullers']} pulls again, the mirror holding it   median {held['median_ms']:7.0f} ms   "
        f"p95 {held['p95_ms']:7.0f} ms   slowest {held['max_ms']:7.0f} ms   "
        f"upstream GETs of the layer: {held['upstream_layer_gets']}",
        flush=True,
    )
    httpd = result["httpd_pulls"]
    print(
        f"  {httpd['pullers']} pulls of httpd at once   median {httpd['median_ms']:7.0f} ms   "
        f"p95 {httpd['p95_ms']:7.0f} ms   slowest {httpd['max_ms']:7.0f} ms   "
        f"upstream GETs of each blob: {sorted(httpd['upstream_blob_gets'].values())}",
        flush=True,
    )
    alone = result["httpd_alone"]
    print(
        f"  one pull of httpd alone ({alone['runs']} runs, the mirror holding it)   median {alone['median_ms']:7.0f} ms"
        f"   ratio of the {httpd['pullers']} at once to one alone: {httpd['median_ms'] / alone['median_ms']:.1f}x",
        flush=True,
    )
    print(
        f"  terminals the bench had to open again (Daphne dropped them under the load): {result['terminals_reopened']}"
    )
