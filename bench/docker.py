"""Docker inside sandboxes (issue 15), measured side by side in one run:

- **warm**: a warm pool of docker sandboxes (the default image ``docker``): the API call to the
  first prompt, and whether ``docker info`` typed at that prompt runs without the docker
  wrapper's "Waiting for the Docker engine" (the engine and its shipped images ready);
- **cold**: the API call (no pool) to the first prompt, to ``docker info`` answering inside, and
  to the shipped images loaded (what the wrapper waits for);
- **hello-world**: ``docker run --rm hello-world`` in a sandbox against the same image (the
  archive the image ships, same image id) on a host dockerd, alternately, timed inside each
  with ``date +%s%N`` by the same shell line;
- **idle memory**: what the cgroup of each idle docker sandbox is charged, median over
  BENCH_DOCKER_SANDBOXES sandboxes;
- **web servers**: BENCH_DOCKER_SANDBOXES docker sandboxes each running a web server container
  published on port 8080 and answering ``curl localhost:8080`` inside; their memory, and the
  echo latency of a neighbour's terminal meanwhile against its idle echo measured before them.

Everything the section starts is destroyed and stopped at its end, and what it could have left
on the host (dockerd processes, links, nftables tables, cgroups, mounts) is counted.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import neighbours, startup, terminals
from bench.measuring import measure, measure_alternately, measured_runs, percentile, print_summary, summary
from sandbox.host import cgroups, mounts
from sandbox.images.store import ImageStore
from sandbox.settings import load as load_settings
from tests import dockerkit
from tests.imagekit import CACHE
from tests.stack import Stack, Terminal

WARM_POOL = 2
ENGINE_WAIT = 90.0  # seconds for an engine to answer on a loaded machine
CONCURRENCY = 4  # sandboxes started (or destroyed, or given a web server) at once
IDLE_SETTLE = 5.0  # seconds every engine is left idle before its sandbox's memory is read
MIB = 1024**2
WAITING = "Waiting for the Docker engine"  # the docker wrapper's line while the engine is not ready
LOADED = "/run/playground-images-loaded"  # the docker image's init leaves it once its images are loaded
HOST_CLIENT = "/usr/bin/docker"  # Debian's docker.io client, the one inside the docker image
HOST_HELLO = "playground-bench/hello-world:latest"  # the shipped hello-world, under a tag of ours on the host
WEB_PAGE = "served-by-busybox-httpd"
# busybox:latest is imported by the docker image's init; the Apache httpd image of the seminar
# comes with the registry mirror (a later issue). The page proves the server answers, not a 404.
WEB_SERVER = (
    "docker run -d -p 8080:80 busybox sh -c "
    f"'mkdir -p /www && echo {WEB_PAGE} >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null && "
    "for i in $(seq 100); do curl -sf localhost:8080 && exit 0; sleep 0.1; done; exit 1"
)
TARGETS = {
    "warm_prompt_ms": 50.0,
    "cold_engine_ms": 1000.0,
    "hello_world_ratio": 1.3,
    "idle_memory_mib": 40.0,
}


# -- stacks ----------------------------------------------------------------------------------------
def docker_stack(**settings: str) -> Stack:
    """A started stack whose store holds the ``docker`` image (built before the start, since a
    launcher whose default image is ``docker`` refuses to start without it; seconds from var/cache)."""
    stack = Stack.create(PLAYGROUND_IMAGE_CACHE=str(CACHE), **settings)
    dockerkit.build_docker_image(stack)
    try:
        stack.start()
    except BaseException:
        stack.stop()  # a launcher that started but never got ready
        raise
    return stack


def stop_stack(stack: Stack) -> dict[str, list[str]]:
    """End the stack's sessions, stop it (Ctrl-C); what it left on the host (see ``host_leftovers``)."""
    try:
        stack.end_started_sessions()
    finally:
        stack.stop()
    return host_leftovers(stack)


def host_leftovers(stack: Stack) -> dict[str, list[str]]:
    """What a stopped stack left on the host, by kind (empty kinds left out): dockerd processes in
    its cgroups, its links (bridge, veths), its nftables tables, its cgroup parent, mounts under its data."""
    name = stack.env["PLAYGROUND_NETWORK_NAME"]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    found = {
        "dockerd": [
            str(pid) for pid in pids_named("dockerd") if f"/{stack.cgroup_parent}/" in read(f"/proc/{pid}/cgroup")
        ],
        "links": [
            line.split(":")[1].strip() for line in links.splitlines() if line.split(":")[1].strip().startswith(name)
        ],
        "nft_tables": [line for line in tables.splitlines() if line.split()[-1:] == [name]],
        "cgroups": [str(h / stack.cgroup_parent) for h in cgroups.hierarchies() if (h / stack.cgroup_parent).exists()],
        "mounts": [str(m) for m in mounts.mounts_under(stack.data_dir)],
    }
    return {kind: items for kind, items in found.items() if items}


def pids_named(name: str) -> list[int]:
    """Live processes whose command name is ``name``."""
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/comm") if read(str(p)).strip() == name]


def read(path: str) -> str:
    """The text of ``path``, or "" if it is gone (a process that just ended)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# -- 1. warm: click to prompt, the engine ready there ---------------------------------------------
async def warm_prompt(stack: Stack) -> tuple[float, bool]:
    """API call to the first prompt of a pooled docker sandbox, and whether ``docker info`` typed
    right after it ran without waiting for the engine; then waits for the pool to be full again."""
    elapsed, session, terminal = await startup.api_prompt(stack)
    try:
        said = await terminal.run("docker info >/dev/null && echo engine-answered", ENGINE_WAIT)
    finally:
        await terminal.close()
        await asyncio.to_thread(stack.end_session, session)
    if "engine-answered" not in said:
        raise RuntimeError(f"docker info failed in a pooled docker sandbox; it printed {said!r}")
    await startup.pool_full(stack, WARM_POOL, ENGINE_WAIT)
    return elapsed, WAITING not in said


def run_warm(runs: int) -> dict[str, Any]:
    """Warm click-to-prompt on a pool of WARM_POOL docker sandboxes, and how often the engine was ready."""
    stack = docker_stack(PLAYGROUND_DEFAULT_IMAGE="docker", PLAYGROUND_WARM_POOL=str(WARM_POOL))
    ready: list[bool] = []

    def one(i: int) -> float:
        elapsed, engine_ready = asyncio.run(warm_prompt(stack))
        if i >= 0:
            ready.append(engine_ready)
        return elapsed

    try:
        prompt = measure(f"warm pool of {WARM_POOL}: API to prompt", runs, one)
    finally:
        left = stop_stack(stack)
    return {"pool": WARM_POOL, "prompt": prompt, "engine_ready_at_prompt": sum(ready), "left_on_host": left}


# -- 2. cold: create to docker info ----------------------------------------------------------------
ENGINE_LOOP = (
    "until /usr/bin/docker info >/dev/null 2>&1; do sleep 0.02; done; echo ENGINE''-UP; "
    f"until [ -e {LOADED} ]; do sleep 0.02; done; echo IMAGES''-LOADED\n"
)


async def cold_engine(stack: Stack) -> dict[str, float]:
    """Seconds from the API call (no pool) to the first prompt of a docker sandbox, to ``docker
    info`` answering inside (polled every 20 ms from that prompt) and to its shipped images loaded."""
    started = time.perf_counter()
    prompt, session, terminal = await startup.api_prompt(stack, "docker")
    try:
        await terminal.type(ENGINE_LOOP)
        await terminal.expect("ENGINE-UP\r\n", ENGINE_WAIT)
        engine = time.perf_counter() - started
        await terminal.expect("IMAGES-LOADED\r\n", ENGINE_WAIT)
        loaded = time.perf_counter() - started
    finally:
        await terminal.close()
        await asyncio.to_thread(stack.end_session, session)
    await asyncio.to_thread(stack.wait_for_clean_host, 60)
    return {"prompt": prompt, "engine": engine, "images_loaded": loaded}


COLD = {
    "prompt": "cold: API to prompt",
    "engine": "cold: API to docker info",
    "images_loaded": "cold: API to images loaded",
}


def run_cold(stack: Stack, runs: int) -> dict[str, dict[str, float]]:
    """``cold_engine``'s three times, each summarised."""
    samples = measured_runs(runs, lambda i: asyncio.run(cold_engine(stack)))
    results = {key: summary([s[key] for s in samples]) for key in COLD}
    for key, label in COLD.items():
        print_summary(label, results[key])
    return results


# -- 3. hello-world inside against a host dockerd --------------------------------------------------
def timed_run(client: str, args: str) -> str:
    """A shell line timing ``<client> run --rm <args>`` with ``date +%s%N``; prints ``elapsed_ns=N``."""
    return (
        f"s=$(date +%s%N); {client} run --rm {args} >/dev/null 2>&1 || exit 1; e=$(date +%s%N); "
        'echo "elapsed_ns=$((e - s))"'
    )


def elapsed_of(output: str, where: str) -> float:
    """The seconds a ``timed_run`` line printed; RuntimeError naming ``where`` if it failed."""
    found = re.search(r"elapsed_ns=(\d+)", output)
    if found is None:
        raise RuntimeError(f"docker run --rm hello-world failed {where}; it printed {output!r}")
    return int(found.group(1)) / 1e9


def shipped_hello_world(stack: Stack) -> Path:
    """The ``docker save`` archive of hello-world the docker image ships (its init loads it inside)."""
    cfg = load_settings(stack.env)
    image = ImageStore(cfg.images_dir, cfg.uid_base).load("docker")
    for layer in image.layers:
        archive = layer / "usr/share/playground/images/hello-world.tar"
        if archive.exists():
            return archive
    raise RuntimeError(f"the docker image in {cfg.images_dir} ships no hello-world.tar")


def load_on_host(archive: Path) -> str:
    """Load ``archive`` into the host's engine as HOST_HELLO (its manifest retagged, so no image of
    the host's own is touched); the image's id."""
    with tempfile.TemporaryDirectory(prefix="pg-bench-hello-") as work:
        retagged = Path(work) / "hello.tar"
        with tarfile.open(archive) as source, tarfile.open(retagged, "w") as target:
            for member in source.getmembers():
                data = source.extractfile(member) if member.isfile() else None
                if member.name == "manifest.json" and data is not None:
                    manifest = json.loads(data.read())
                    for entry in manifest:
                        entry["RepoTags"] = [HOST_HELLO]
                    raw = json.dumps(manifest).encode()
                    member.size, data = len(raw), io.BytesIO(raw)
                target.addfile(member, data)
        subprocess.run([HOST_CLIENT, "load", "--input", str(retagged)], check=True, capture_output=True)
    return host_image_id(HOST_HELLO)


def host_image_id(name: str) -> str:
    return subprocess.run(
        [HOST_CLIENT, "image", "inspect", "--format", "{{.Id}}", name], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_hello_world(stack: Stack, runs: int) -> dict[str, Any]:
    """``docker run --rm hello-world`` in one docker sandbox (its default bridge network, and
    ``--network none``) and on the host's engine (``--network none``: the benchmark's host dockerd
    runs without a bridge, to leave the host's network as it found it), alternately."""
    why_not = startup.docker_available()
    if why_not is not None:
        print(f"  hello-world on a host dockerd: not measured ({why_not})", flush=True)
        return {"unavailable": why_not}
    engine = [pid for proc in startup.STARTED_DOCKERD for pid in (proc.pid, *descendants(proc.pid))]
    try:
        host_id = load_on_host(shipped_hello_world(stack))
        sandbox_id = asyncio.run(dockerkit.start_docker_sandbox(stack))
        host_engine_anon = anon_mib(engine)  # the host's engine about as idle as the sandbox's
        try:
            inside_id = inside(stack, sandbox_id, "docker image inspect --format '{{.Id}}' hello-world").strip()
            if inside_id != host_id:
                raise RuntimeError(f"hello-world differs: {inside_id} in the sandbox, {host_id} on the host")

            def in_sandbox(args: str) -> Callable[[int], float]:
                return lambda i: elapsed_of(inside(stack, sandbox_id, timed_run("/usr/bin/docker", args)), "inside")

            bridge, none, host = measure_alternately(
                runs,
                {
                    "hello-world, sandbox": in_sandbox("hello-world"),
                    "hello-world, sandbox, no network": in_sandbox("--network none hello-world"),
                    "hello-world, host, no network": lambda i: elapsed_of(
                        on_host(timed_run(HOST_CLIENT, f"--network none {HOST_HELLO}")), "on the host"
                    ),
                },
            )
        finally:
            asyncio.run(dockerkit.agent(stack).request("destroy", id=sandbox_id))
    finally:
        subprocess.run([HOST_CLIENT, "rmi", "--force", HOST_HELLO], capture_output=True)
        startup.stop_started_dockerd()
    return {
        "host_engine_processes_left": [pid for pid in engine if read(f"/proc/{pid}/cmdline")],
        "host_engine_anon_mib": host_engine_anon,  # dockerd and containerd this benchmark started; 0 if it found one
        "image_id": host_id,
        "client": HOST_CLIENT,
        "sandbox": bridge,
        "sandbox_network_none": none,
        "host_network_none": host,
        "ratio_network_none": none["median_ms"] / host["median_ms"],
        "ratio_sandbox_bridge_over_host_none": bridge["median_ms"] / host["median_ms"],
    }


def anon_mib(pids: list[int]) -> float:
    """The anonymous memory (RssAnon) of the processes ``pids``, in MiB."""
    lines = [line for pid in pids for line in read(f"/proc/{pid}/status").splitlines()]
    return sum(int(line.split()[1]) for line in lines if line.startswith("RssAnon:")) / 1024


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (a host dockerd's containerd and its shims), now."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").glob("*") for c in read(f"{task}/children").split()]
    return [*children, *(d for c in children for d in descendants(c))]


def inside(stack: Stack, sandbox_id: str, script: str) -> str:
    """What ``script`` printed, run inside the sandbox by the agent; RuntimeError if it failed."""
    reply = asyncio.run(dockerkit.run(stack, sandbox_id, script, ENGINE_WAIT))
    if reply["code"] != 0:
        raise RuntimeError(f"{script!r} failed in sandbox {sandbox_id}: {reply['output']}")
    return str(reply["output"])


def on_host(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout


# -- 4. and 5. idle memory; many sandboxes with a web server each ----------------------------------
def memory_charged(parent: str, runtime_id: str) -> dict[str, float]:
    """MiB charged to one sandbox's memory cgroup, its inner containers' cgroups included:
    ``usage`` (v1 memory.usage_in_bytes, v2 memory.current: everything charged, page cache and
    kernel memory included); ``anon`` (v1 total_rss, v2 anon: the processes' own memory); ``file``
    (v1 total_cache, v2 file: page cache), of which ``shmem`` (tmpfs: the writable layer and
    /var/lib/docker's images and containers); ``kernel_and_other``, the rest of ``usage`` (kernel
    memory: page tables, sockets, slab)."""
    for directory in cgroups.sandbox_dirs(parent, runtime_id):
        if (directory / "memory.usage_in_bytes").exists():  # v1, also on hybrid hosts
            usage, names = int(read(str(directory / "memory.usage_in_bytes"))), ("total_rss", "total_cache")
        elif (directory / "memory.current").exists():  # v2
            usage, names = int(read(str(directory / "memory.current"))), ("anon", "file")
        else:
            continue
        stat = read(str(directory / "memory.stat"))
        anon, file = (neighbours.field_value(stat, name) for name in names)
        shmem = neighbours.field_value(stat, "total_shmem" if names[0] == "total_rss" else "shmem")
        return {
            "usage": usage / MIB,
            "anon": anon / MIB,
            "file": file / MIB,
            "shmem": shmem / MIB,
            "kernel_and_other": (usage - anon - file) / MIB,
        }
    raise RuntimeError(f"sandbox {runtime_id} has no memory cgroup under {parent}")


def memory_summary(readings: list[dict[str, float]]) -> dict[str, Any]:
    """Median and maximum of each kind of ``memory_charged`` readings, and their total usage."""
    kinds = readings[0].keys()
    return {
        "sandboxes": len(readings),
        "median_mib": {k: statistics.median(r[k] for r in readings) for k in kinds},
        "max_mib": {k: max(r[k] for r in readings) for k in kinds},
        "total_usage_mib": sum(r["usage"] for r in readings),
    }


def host_parts_rss_mib(stack: Stack) -> float:
    """Resident memory of the stack's agent and keeper, the host processes that serve every sandbox."""
    pids = [stack.pid_of(part) for part in ("agent", "keeper")]
    return sum(terminals.rss_bytes(pid) for pid in pids if pid is not None) / MIB


async def bounded(jobs: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run ``jobs``, CONCURRENCY at a time; their results, or the first error once all are done."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Coroutine[Any, Any, Any]) -> Any:
        async with gate:
            return await job

    results = await asyncio.gather(*(one(job) for job in jobs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def start_sandboxes(stack: Stack, count: int, started: list[str]) -> None:
    """Start ``count`` docker sandboxes whose engines answer, adding each id to ``started`` (so the
    caller destroys them whatever happens)."""

    async def one() -> None:
        started.append(await dockerkit.start_docker_sandbox(stack))

    await bounded([one() for _ in range(count)])


async def runtime_ids(stack: Stack, sandbox_ids: list[str]) -> list[str]:
    listing = await dockerkit.agent(stack).request("list")
    by_id = {s["id"]: s["runtime_id"] for s in listing["sandboxes"]}
    return [by_id[s] for s in sandbox_ids]


async def serve_web(stack: Stack, sandbox_id: str) -> bool:
    """Start the web server container in the sandbox; whether ``curl localhost:8080`` inside got its page."""
    reply = await dockerkit.run(stack, sandbox_id, WEB_SERVER, ENGINE_WAIT)
    return reply["code"] == 0 and WEB_PAGE in reply["output"]


async def echo(terminal: Terminal, keystrokes: int) -> dict[str, float]:
    samples = await neighbours.echo_latencies(terminal, keystrokes)
    return {"median_ms": percentile(samples, 0.5) * 1000, "p99_ms": percentile(samples, 0.99) * 1000}


async def crowd_of_web_servers(stack: Stack, count: int, keystrokes: int, started: list[str]) -> dict[str, Any]:
    """``count`` docker sandboxes: their idle memory, then each running a web server: their memory
    and a neighbour's echo latency, against that neighbour's echo before they started."""
    session = await asyncio.to_thread(stack.start_session, image="busybox")
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect(startup.PROMPT, 20)
        idle_echo = await echo(terminal, keystrokes)
        parts_before = host_parts_rss_mib(stack)
        began = time.perf_counter()
        await start_sandboxes(stack, count, started)
        start_s = time.perf_counter() - began
        ids = await runtime_ids(stack, started)
        await asyncio.sleep(IDLE_SETTLE)
        idle = memory_summary([memory_charged(stack.cgroup_parent, r) for r in ids])
        serving = await bounded([serve_web(stack, s) for s in started])
        await asyncio.sleep(IDLE_SETTLE)
        web = memory_summary([memory_charged(stack.cgroup_parent, r) for r in ids])
        parts_growth = host_parts_rss_mib(stack) - parts_before
        loaded_echo = await echo(terminal, keystrokes)
    finally:
        await terminal.close()
        await asyncio.to_thread(stack.end_session, session)
    return {
        "sandboxes": count,
        "started_in_s": start_s,
        "idle_memory": idle,
        "web_server": "busybox httpd in busybox:latest (the httpd image comes with the registry mirror, a later issue)",
        "answering": sum(serving),
        "memory": web,
        "agent_and_keeper_rss_growth_mib": parts_growth,
        "echo_keystrokes": keystrokes,
        "echo_idle": idle_echo,
        "echo_with_web_servers": loaded_echo,
        "echo_p99_ratio": loaded_echo["p99_ms"] / idle_echo["p99_ms"],
        "echo_median_ratio": loaded_echo["median_ms"] / idle_echo["median_ms"],
    }


async def destroy(stack: Stack, sandbox_ids: list[str]) -> float:
    """Destroy the sandboxes, CONCURRENCY at a time; the seconds it took."""
    began = time.perf_counter()
    client = dockerkit.agent(stack)
    await bounded([client.request("destroy", id=s) for s in sandbox_ids])
    return time.perf_counter() - began


# -- the section -----------------------------------------------------------------------------------
def run(runs: int, sandboxes: int, keystrokes: int) -> dict[str, Any]:
    """Every measure of this module, each in this run; with the targets of issue 15."""
    if sandboxes + 10 > 250:
        raise SystemExit(f"BENCH_DOCKER_SANDBOXES={sandboxes}: a bench stack's /24 network holds at most 240")
    results: dict[str, Any] = {"warm": run_warm(runs)}
    stack = docker_stack(
        PLAYGROUND_HOST_MAX_SANDBOXES=str(sandboxes + 10),  # and the neighbour, the hello-world sandbox
        PLAYGROUND_REAPER_INTERVAL="3600",  # the sandboxes started through the agent have no session
    )
    started: list[str] = []
    try:
        results["cold"] = run_cold(stack, runs)
        results["hello_world"] = run_hello_world(stack, runs)
        crowd = asyncio.run(crowd_of_web_servers(stack, sandboxes, keystrokes, started))
        crowd["destroyed_in_s"] = asyncio.run(destroy(stack, started))
        started.clear()
        crowd["left_by_sandboxes"] = sum(len(v) for v in stack.wait_for_clean_host(120).values())
        results["crowd"] = crowd
    finally:
        if started:
            asyncio.run(destroy(stack, started))
        left = stop_stack(stack)
    left_by = (
        ("warm stack", results["warm"].pop("left_on_host")),
        ("stack", left),
        ("host dockerd", results.get("hello_world", {}).get("host_engine_processes_left")),
    )
    results["left_on_host"] = {name: found for name, found in left_by if found}
    results["targets_met"] = targets_met(results)
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Each figure against its peer in this run, as medians (p99 for the echo)."""
    hello, crowd = results["hello_world"], results["crowd"]
    found = {
        "cold_prompt_over_warm_prompt": results["cold"]["prompt"]["median_ms"] / results["warm"]["prompt"]["median_ms"],
        "echo_p99_web_servers_over_idle": crowd["echo_p99_ratio"],
        "echo_median_web_servers_over_idle": crowd["echo_median_ratio"],
    }
    if "ratio_network_none" in hello:
        found["hello_world_sandbox_over_host"] = hello["ratio_network_none"]
        found["hello_world_sandbox_bridge_over_host"] = hello["ratio_sandbox_bridge_over_host_none"]
    if hello.get("host_engine_anon_mib"):
        found["idle_anon_over_host_engine_anon"] = (
            crowd["idle_memory"]["median_mib"]["anon"] / hello["host_engine_anon_mib"]
        )
    return found


def targets_met(results: dict[str, Any]) -> dict[str, bool]:
    """Issue 15's targets, against this run's medians."""
    met = {
        "warm_prompt": results["warm"]["prompt"]["median_ms"] <= TARGETS["warm_prompt_ms"],
        "cold_engine": results["cold"]["engine"]["median_ms"] <= TARGETS["cold_engine_ms"],
        "idle_memory": results["crowd"]["idle_memory"]["median_mib"]["usage"] <= TARGETS["idle_memory_mib"],
        "web_servers_answering": results["crowd"]["answering"] == results["crowd"]["sandboxes"],
    }
    if "ratio_network_none" in results["hello_world"]:
        met["hello_world_ratio"] = results["hello_world"]["ratio_network_none"] <= TARGETS["hello_world_ratio"]
    return met


def print_table(results: dict[str, Any]) -> None:
    """The section's figures against their targets, as ``make bench`` prints them."""
    met, warm, cold, hello, crowd = (results[k] for k in ("targets_met", "warm", "cold", "hello_world", "crowd"))

    def row(label: str, value: str, target: str = "", key: str = "") -> None:
        verdict = ("met" if met[key] else "MISSED") if key in met else "not measured" if key else ""
        print(f"  {label:<38} {value:<46} {target:<11} {verdict}", flush=True)

    ready = warm["engine_ready_at_prompt"]
    row("warm: API to prompt, median", f"{warm['prompt']['median_ms']:.1f} ms", "<= 50 ms", "warm_prompt")
    row("warm: engine ready at the prompt", f"{ready} of {warm['prompt']['runs']} runs")
    row("cold: API to docker info, median", f"{cold['engine']['median_ms']:.0f} ms", "<= 1000 ms", "cold_engine")
    row(
        "cold: API to prompt, to images loaded",
        f"{cold['prompt']['median_ms']:.0f} ms, {cold['images_loaded']['median_ms']:.0f} ms",
    )
    if "ratio_network_none" in hello:
        sandbox, host = hello["sandbox_network_none"]["median_ms"], hello["host_network_none"]["median_ms"]
        row(
            "hello-world: sandbox / host dockerd",
            f"{hello['ratio_network_none']:.2f}x ({sandbox:.0f} / {host:.0f} ms, no network)",
            "<= 1.3x",
            "hello_world_ratio",
        )
        row(
            "hello-world: sandbox's bridge / host",
            f"{hello['ratio_sandbox_bridge_over_host_none']:.2f}x ({hello['sandbox']['median_ms']:.0f} ms)",
        )
    else:
        row("hello-world: sandbox / host dockerd", hello["unavailable"], "<= 1.3x", "hello_world_ratio")
    idle = crowd["idle_memory"]["median_mib"]
    row("idle docker sandbox: memory charged", f"{idle['usage']:.1f} MiB median", "<= 40 MiB", "idle_memory")
    row(
        "  of which",
        f"anon {idle['anon']:.1f}, page cache {idle['file']:.1f} (tmpfs {idle['shmem']:.1f}), "
        f"kernel {idle['kernel_and_other']:.1f} MiB",
    )
    if hello.get("host_engine_anon_mib"):
        row("  host dockerd + containerd, anon", f"{hello['host_engine_anon_mib']:.1f} MiB (the peer of anon)")
    web = crowd["memory"]
    row(
        f"{crowd['sandboxes']} sandboxes serving a web page",
        f"{crowd['answering']} answer curl localhost:8080 inside",
        "all",
        "web_servers_answering",
    )
    row(
        "  memory charged",
        f"{web['total_usage_mib']:.0f} MiB in all, {web['median_mib']['usage']:.1f} MiB median each",
    )
    row("  agent and keeper's growth", f"{crowd['agent_and_keeper_rss_growth_mib']:.1f} MiB resident")
    idle_echo, loaded_echo = crowd["echo_idle"], crowd["echo_with_web_servers"]
    row("neighbour's echo p50/p99, idle", f"{idle_echo['median_ms']:.2f} / {idle_echo['p99_ms']:.2f} ms")
    row("  with the web servers", f"{loaded_echo['median_ms']:.2f} / {loaded_echo['p99_ms']:.2f} ms")
    print("  ratios: " + ", ".join(f"{k} = {v:.2f}x" for k, v in results["ratios"].items()), flush=True)
    print(
        f"  web servers: {crowd['web_server']}; {crowd['sandboxes']} sandboxes started in "
        f"{crowd['started_in_s']:.1f} s, destroyed in {crowd['destroyed_in_s']:.1f} s; left on the host: "
        f"{results['left_on_host'] or 'nothing'}",
        flush=True,
    )
