"""``python -m bench`` (``make bench``): run the benchmarks, print a table, write JSON to bench/results/.

Every figure is measured in this run, against peers measured in the same run on the same
machine and the same busybox rootfs. Set BENCH_RUNS to change the number of sandboxes (20),
BENCH_KEYSTROKES the keystrokes of the noisy-neighbour test (1000), BENCH_CHURN_CYCLES the
create/destroy cycles of the churn (1000).

BENCH_ONLY runs only the named sections (comma-separated: startup, browser, neighbours, churn,
terminals, crowd, docker, ports, registry, classroom, capacity, remote). BENCH_BROWSER_STARTS sets the starts of the
click-to-prompt section in Chromium (10). BENCH_ECHO_KEYSTROKES sets the keystrokes of the echo
comparison with terminado (2000),
BENCH_TERMINALS the terminals typing at once (200), BENCH_TYPING_SECONDS for how long (60),
BENCH_DOCKER_SANDBOXES the docker sandboxes each running a web server at once (50); the docker
section's echo latencies take BENCH_KEYSTROKES keystrokes, its timings BENCH_RUNS runs. The ports section
(port links against Debian's nginx) opens BENCH_PORTS_WEBSOCKETS websockets at once (200), each sending
BENCH_PORTS_MESSAGES messages (100). The registry section has BENCH_REGISTRY_PULLERS docker sandboxes
pull one image at once (50), its layer BENCH_REGISTRY_LAYER_MB of random bytes and a busybox (20),
and times single pulls BENCH_RUNS times (at most 10). The classroom section has BENCH_CLASS_LEARNERS
scripted learners (50) join a workshop of docker-101 at once (or over BENCH_CLASS_ARRIVAL seconds),
on a site of BENCH_CLASS_WEB_PROCESSES web processes (2). The capacity section (bench/capacity.py)
creates busybox sandboxes through the agent for BENCH_CAPACITY_SECONDS (60) against a bare runc run for
as long, and docker sandboxes for BENCH_CAPACITY_DOCKER_SECONDS (30), each destroyed once created; then
leaves BENCH_CAPACITY_IDLE busybox sandboxes idle (500) and reads the host's memory. The remote section
(bench/remote.py) compares BENCH_ECHO_KEYSTROKES keystrokes' echo through an agent over mutual TLS, as
another host's, with this host's own path.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import browser, capacity, classroom, crowd, docker, neighbours, ports, registry, remote, startup, terminals
from bench.measuring import WARMUP, measure, measure_alternately
from sandbox.host import cgroups
from tests import churn
from tests.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"
WARM_POOL = 2
CROWD_RATE = 10.0  # keystrokes a second, each terminal


def run_startup(runs: int) -> dict[str, Any]:
    print(f"create-to-first-prompt, {runs} sequential sandboxes each (after {WARMUP} warm-up runs):", flush=True)
    stack = Stack.create()
    stack.start()
    results: dict[str, Any] = {}
    try:
        rootfs = startup.peer_rootfs(stack)
        print(f"  (debian image ready in {startup.debian_image(stack):.0f} s)", flush=True)
        # The two images alternate, so that a change in the machine's load weighs on both alike.
        results["playground_api"], results["playground_api_debian"] = measure_alternately(
            runs,
            {
                "playground (API + websocket)": lambda i: asyncio.run(startup.playground_api(stack)),
                "playground, debian image": lambda i: asyncio.run(startup.playground_api(stack, "debian")),
            },
        )
        results["playground_agent"] = measure(
            "playground agent alone", runs, lambda i: asyncio.run(startup.playground_agent(stack, i + WARMUP))
        )
        with tempfile.TemporaryDirectory(prefix="pg-bench-runc-") as work:
            try:
                results["runc_run"] = measure(
                    "bare runc run", runs, lambda i: startup.bare_runc(rootfs, Path(work), i + WARMUP)
                )
            finally:  # runc removes each run's cgroup, not the parent the peer put them under
                cgroups.remove_parent(startup.RUNC_CGROUP_PARENT)
        why_not = startup.docker_available()
        if why_not is None:
            image = startup.docker_image(rootfs)
            results["docker_run"] = measure("docker run", runs, lambda i: startup.docker_run(image, i + WARMUP))
        else:
            results["docker_run"] = {"unavailable": why_not}
            print(f"  docker run: not measured ({why_not})", flush=True)
    finally:
        stack.stop()
        startup.stop_started_dockerd()
    warm_stack = Stack.create(PLAYGROUND_WARM_POOL=str(WARM_POOL))
    warm_stack.start()
    try:
        results["playground_api_warm"] = measure(
            f"playground, warm pool of {WARM_POOL}",
            runs,
            lambda i: asyncio.run(startup.playground_api_warm(warm_stack, WARM_POOL)),
        )
    finally:
        warm_stack.stop()
    api = results["playground_api"]["median_ms"]
    warm = results["playground_api_warm"]["median_ms"]
    ratios = {
        "playground_api_over_runc": api / results["runc_run"]["median_ms"],
        "cold_over_warm": api / warm,
        "debian_over_busybox": results["playground_api_debian"]["median_ms"] / api,
    }
    if "median_ms" in results["docker_run"]:
        ratios["docker_over_playground_api"] = results["docker_run"]["median_ms"] / api
        ratios["docker_over_playground_warm"] = results["docker_run"]["median_ms"] / warm
    results["ratios"] = ratios
    print("  ratios (medians): " + ", ".join(f"{k} = {v:.2f}x" for k, v in ratios.items()), flush=True)
    return results


def run_browser(starts: int) -> dict[str, Any]:
    print(
        f"click to prompt in Chromium: {starts} starts from the landing page (after {WARMUP} warm-up ones), "
        f"warm pool of {browser.WARM_POOL}, each in a new browser context:",
        flush=True,
    )
    return browser.run(starts)


def run_neighbours(keystrokes: int) -> dict[str, dict[str, float]]:
    print(
        f"noisy neighbours: echo latency of one sandbox over {keystrokes} keystrokes, idle and while another "
        "runs a fork bomb, a memory bomb, a disk fill and a CPU burn (in its shell; then in an inner container "
        "of a docker sandbox):",
        flush=True,
    )
    # The busybox abuser gets a 96 MiB disk (its fill is then quick); the docker one its image's own
    # quotas (1 GiB of memory and of disk, of which the runtime leaves 128 MiB to the processes).
    stack = docker.docker_stack(PLAYGROUND_SANDBOX_DISK="96M")
    results = {}
    try:
        for image in ("busybox", "docker"):
            results[f"{image}_abuser"] = result = asyncio.run(neighbours.measure(stack, keystrokes, image))
            print_neighbours(image, result)
    finally:
        stack.end_started_sessions()
        stack.stop()
    return results


def print_neighbours(image: str, result: dict[str, float]) -> None:
    print(
        f"  {image} abuser: echo median idle {result['idle_median_ms']:.2f} ms, under load "
        f"{result['loaded_median_ms']:.2f} ms (ratio {result['ratio']:.2f}x, target <= 2x: "
        f"{'met' if result['ratio'] <= 2 else 'MISSED'}); p99 idle {result['idle_p99_ms']:.1f} ms, "
        f"under load {result['loaded_p99_ms']:.1f} ms",
        flush=True,
    )
    print(
        f"    both sandboxes held at {result['abuse_processes']:.0f} processes (the abuser's limit "
        f"{result['abuser_pids_limit']:.0f}, {'reached' if result['abuse_reached_pids_limit'] else 'NOT reached'} "
        f"in the {result['abuse_settle_s']:.0f} s before the window), {result['abuse_cpus_busy']:.2f} CPUs, "
        f"{result['abuse_oom_kills']:.0f} OOM kills; the abuser "
        f"{'still ran' if result['abuser_processes_after'] else 'had ended itself'} after the window, was "
        f"destroyed in {result['abuser_destroyed_s']:.2f} s, {result['left_on_host']} objects left",
        flush=True,
    )


def run_docker(runs: int, sandboxes: int, keystrokes: int) -> dict[str, Any]:
    print(
        f"docker inside sandboxes: warm and cold start to an engine answering ({runs} runs each), "
        f"hello-world against a host dockerd, and {sandboxes} sandboxes each running a web server:",
        flush=True,
    )
    result = docker.run(runs, sandboxes, keystrokes)
    docker.print_table(result)
    return result


def run_churn(cycles: int) -> dict[str, object]:
    print(
        f"churn: {cycles} create/destroy cycles, {churn.CONCURRENCY} at a time, with mixed endings "
        "(delete, expiry, idle, agent killed mid-create, worker killed mid-destroy):",
        flush=True,
    )
    report = churn.churn(cycles)
    for kind, reasons in report.reasons().items():
        print(
            f"  {kind:<14} {sum(reasons.values()):5d}: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())),
            flush=True,
        )
    print(
        f"  {report.rate:.2f} cycles/s ({len(report.cycles)} in {report.seconds:.0f} s); "
        f"{sum(c.disturbed for c in report.cycles)} disturbed by an agent kill; "
        f"{report.requeued} destructions lost with a killed worker and queued again; "
        f"{len(report.problems())} problems; removed by the final reconciliation: "
        f"{len(report.reconciled)}; leftovers: {report.leftovers() or 'none'}",
        flush=True,
    )
    for line in report.problems()[:10]:
        print(f"  problem: {line}", flush=True)
    return report.as_dict()


def run_terminals(keystrokes: int) -> dict[str, object]:
    print(
        f"terminals against terminado {terminals.terminado_version()}: echo over {keystrokes} keystrokes (typed "
        "alternately on both), output throughput, memory while a client stops reading:",
        flush=True,
    )
    result = terminals.run(keystrokes)
    terminals.print_table(result)
    return result


def run_crowd(count: int, seconds: float) -> dict[str, object]:
    print(
        f"{count} terminals typing {CROWD_RATE:.0f} keystrokes/s each for {seconds:.0f} s "
        "(every keystroke must come back once, in order):",
        flush=True,
    )
    result = crowd.run(count, CROWD_RATE, seconds)
    crowd.print_summary(result)
    return result


def run_ports(connections: int, messages: int) -> dict[str, Any]:
    print(
        "port links against Debian's nginx proxying the same node port: requests per second (wrk), "
        f"MB/s of a {ports.BIG_FILE_MB} MB download, added latency over a direct request, and {connections} "
        f"websockets sending {messages} messages each:",
        flush=True,
    )
    return ports.run(connections, messages)


def run_capacity() -> dict[str, Any]:
    seconds = float(os.environ.get("BENCH_CAPACITY_SECONDS", "60"))
    docker_seconds = float(os.environ.get("BENCH_CAPACITY_DOCKER_SECONDS", "30"))
    idle = int(os.environ.get("BENCH_CAPACITY_IDLE", "500"))
    print(
        f"capacity: sandboxes created a second for {seconds:.0f} s, {capacity.CONCURRENCY} at a time, each "
        f"destroyed once its shell answered (bare runc run alike; docker image {docker_seconds:.0f} s, done at "
        f"the create's answer); then {idle} idle busybox sandboxes and the host's memory:",
        flush=True,
    )
    return capacity.run(seconds, docker_seconds, idle)


def run_remote(keystrokes: int) -> dict[str, Any]:
    print(
        f"remote: {keystrokes} keystrokes' echo through an agent over mutual TLS (as another host's) and through "
        "the local socket with the PTY lent (as this host's), typed alternately; one request on a new connection each:",
        flush=True,
    )
    return remote.run(keystrokes)


SECTIONS = (
    "startup",
    "browser",
    "neighbours",
    "churn",
    "terminals",
    "crowd",
    "docker",
    "ports",
    "registry",
    "classroom",
    "capacity",
    "remote",
)


def section(name: str, run: Callable[[], object]) -> dict[str, object]:
    """``{name: run()}``, or nothing when BENCH_ONLY names other sections."""
    only = os.environ.get("BENCH_ONLY", "").replace(",", " ").split()
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        raise SystemExit(
            f"BENCH_ONLY={os.environ['BENCH_ONLY']!r} names unknown sections {unknown}; "
            f"use any of {', '.join(SECTIONS)}"
        )
    return {name: run()} if not only or name in only else {}


def main() -> int:
    runs = int(os.environ.get("BENCH_RUNS", "20"))
    runc_version = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(), "runc": runc_version},
        **section("startup", lambda: run_startup(runs)),
        **section("browser", lambda: run_browser(int(os.environ.get("BENCH_BROWSER_STARTS", "10")))),
        **section("neighbours", lambda: run_neighbours(int(os.environ.get("BENCH_KEYSTROKES", "1000")))),
        **section("churn", lambda: run_churn(int(os.environ.get("BENCH_CHURN_CYCLES", "1000")))),
        **section("terminals", lambda: run_terminals(int(os.environ.get("BENCH_ECHO_KEYSTROKES", "2000")))),
        **section(
            "crowd",
            lambda: run_crowd(
                int(os.environ.get("BENCH_TERMINALS", "200")), float(os.environ.get("BENCH_TYPING_SECONDS", "60"))
            ),
        ),
        **section(
            "docker",
            lambda: run_docker(
                runs,
                int(os.environ.get("BENCH_DOCKER_SANDBOXES", "50")),
                int(os.environ.get("BENCH_KEYSTROKES", "1000")),
            ),
        ),
        **section("ports", lambda: run_ports(*ports.websocket_settings())),
        **section(
            "registry",
            lambda: registry.run(
                min(runs, 10),
                int(os.environ.get("BENCH_REGISTRY_PULLERS", "50")),
                int(os.environ.get("BENCH_REGISTRY_LAYER_MB", "20")),
            ),
        ),
        **section("classroom", lambda: classroom.run(int(os.environ.get("BENCH_CLASS_LEARNERS", "50")))),
        **section("capacity", run_capacity),
        **section("remote", lambda: run_remote(int(os.environ.get("BENCH_ECHO_KEYSTROKES", "2000")))),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{report['when'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
