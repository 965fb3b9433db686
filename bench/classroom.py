"""A class of learners (issue #18, acceptance 6): scripted learners over HTTP and websockets.

On a Playground whose default image is ``docker`` (the seminar's), an instructor creates a workshop
for the shipped lab ``docker-101`` with room for BENCH_CLASS_LEARNERS learners (50), the room is
prepared (pooled sandboxes for the class, docs/workshops.md), and the instructor's dashboard is
open over its websocket. Then every learner, each in its own asyncio task and all at once (or
evenly over BENCH_CLASS_ARRIVAL seconds):

1. joins: ``GET /join/<code>`` (the CSRF cookie), ``POST /join`` with the code and a name, which
   answers with the session's cookie and a redirect to its page;
2. opens the terminal's websocket and waits for the first prompt (join to prompt: the figure);
3. does the lab's first two steps as a reader would: opens step 1, checks it (it fails: nothing
   done yet), types ``docker version | tee ~/docker-version.txt`` in the terminal, checks again
   (passes), opens step 2, types ``docker run hello-world``, checks it.

Measured: how long the whole class takes to join; each learner's join-to-prompt; the echo
latency of every keystroke the learners type (the time from sending a key to the next output,
at a prompt where the shell echoes it); and for every step opened or checked, the lag from the
labs API's answer to the dashboard's row for that learner showing it (0 when the row came first).

Peers in the same run: the first prompt of a session started by ``POST /api/sessions/`` on the
same prepared stack (the landing page's Start), and the echo latency of one terminal before the
class arrives, idle host.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import websockets

from bench import docker
from bench.measuring import percentile
from bench.terminals import MAX_MESSAGE, PROMPT, PlaygroundClient, type_line
from tests.stack import REPO, Stack
from tests.workshopkit import CookieClient, make_workshop

TARGETS = {"join_s": 60.0, "prompt_p95_s": 2.0, "dashboard_p95_s": 1.0, "echo_p99_ms": 50.0}
LAB = "docker-101"
WARM_POOL = 2  # make run's pool of the default image
PEER_STARTS = 5
STEP1_COMMAND = "docker version | tee ~/docker-version.txt"
STEP2_COMMAND = "docker run hello-world"
NOT_READY_TRIES = 30  # the lab panel's: a labs call answered not_ready is asked again a second later


# -- the instructor's dashboard -------------------------------------------------------------------
@dataclass
class Dashboard:
    """The instructor's dashboard websocket: when each learner's row first showed each state."""

    seen: dict[tuple[str, tuple[int, int, int]], float] = field(default_factory=dict)
    messages: int = 0

    def note(self, row: dict[str, Any]) -> None:
        state = row_state(row)
        self.seen.setdefault((str(row["name"]), state), time.perf_counter())

    async def follow(self, ws: websockets.ClientConnection) -> None:
        async for message in ws:
            self.messages += 1
            data = json.loads(message)
            for row in data.get("rows", [data["row"]] if "row" in data else []):
                self.note(row)


def row_state(row: dict[str, Any]) -> tuple[int, int, int]:
    """What a dashboard row says of a learner's progress: step, steps passed, failed checks."""
    return int(row["step"] or 0), int(row["checks_passed"]), int(row["checks_failed"])


def progress_state(lab: dict[str, Any], failed: int) -> tuple[int, int, int]:
    """The same from the labs API's answer (``lab`` part) and the failed checks counted so far."""
    return int(lab["current"]), len(lab["passed"]), failed


async def open_dashboard(stack: Stack, mark: str, workshop_id: str) -> tuple[websockets.ClientConnection, Dashboard]:
    """Sign in as the instructor and open the workshop's dashboard websocket (its snapshot read)."""
    teacher = CookieClient(stack.port)
    status, _, body = await asyncio.to_thread(
        teacher.post_form, "/accounts/login/", {"username": f"teacher-{mark}", "password": f"pw-{mark}"}
    )
    if status != 302:
        raise RuntimeError(f"the instructor could not sign in: {status} {body[:200]!r}")
    ws = await websockets.connect(
        f"ws://127.0.0.1:{stack.port}/ws/workshops/{workshop_id}/",
        additional_headers={"Cookie": teacher.cookie_header(), "Origin": f"http://127.0.0.1:{stack.port}"},
        max_size=MAX_MESSAGE,
    )
    return ws, Dashboard()


# -- one learner ------------------------------------------------------------------------------------
@dataclass
class Learner:
    """One scripted learner's figures."""

    name: str
    joined_at: float = 0.0  # seconds from sending the join form to its answer
    prompt_s: float = 0.0  # seconds from sending the join form to the first prompt
    shown_s: float = 0.0  # ... to the session's JSON (the page's GET, which names the terminal)
    opened_s: float = 0.0  # ... to the terminal's websocket accepted
    output_s: float = 0.0  # ... to the terminal's first output (the sandbox attached)
    echoes: list[float] = field(default_factory=list)
    answered: list[tuple[tuple[int, int, int], float]] = field(default_factory=list)  # state, API answer time
    error: str = ""


async def lab_call(http: CookieClient, learner: Learner, path: str, failed: int) -> dict[str, Any]:
    """A labs API call; notes the state it answered with and when. Asked again a second later while it
    answers 409 ``not_ready`` (the node's provisioning can end after its prompt shows), 30 times at
    most, as the lab panel does (frontend/src/lab.js)."""
    for _ in range(NOT_READY_TRIES):
        status, _, body = await asyncio.to_thread(http.send, "POST", path, None, {})
        if status != 409 or json.loads(body).get("error") != "not_ready":
            break
        await asyncio.sleep(1)
    if status >= 400:
        raise RuntimeError(f"POST {path}: {status} {body[:200]!r}")
    reply = dict(json.loads(body))
    learner.answered.append((progress_state(reply["lab"], failed), time.perf_counter()))
    return reply


async def attend(stack: Stack, code: str, index: int, learner: Learner) -> None:
    """One learner's class: join, first prompt, the lab's first two steps (see the module's docstring)."""
    http = CookieClient(stack.port)
    start = time.perf_counter()
    session_id = await asyncio.to_thread(http.join, code, learner.name)
    learner.joined_at = time.perf_counter() - start
    shown = await asyncio.to_thread(http.api, "GET", f"/api/sessions/{session_id}/")
    learner.shown_s = time.perf_counter() - start
    url = f"ws://127.0.0.1:{stack.port}{shown['instances'][0]['terminal']}"
    terminal = PlaygroundClient(
        await websockets.connect(
            url,
            additional_headers={"Cookie": http.cookie_header(), "Origin": f"http://127.0.0.1:{stack.port}"},
            max_size=MAX_MESSAGE,
        )
    )
    learner.opened_s = time.perf_counter() - start
    try:
        while not terminal.pending:
            terminal.pending += await terminal.read(60)
        learner.output_s = time.perf_counter() - start
        await terminal.expect(PROMPT, 60)
        learner.prompt_s = time.perf_counter() - start
        steps = f"/api/sessions/{session_id}/lab/steps"
        await lab_call(http, learner, f"{steps}/1/open/", 0)
        first = await lab_call(http, learner, f"{steps}/1/check/", 1)
        failed = 0 if first["passed"] else 1
        await type_line(terminal, STEP1_COMMAND, learner.echoes)
        await terminal.expect(PROMPT, 120)
        await lab_call(http, learner, f"{steps}/1/check/", failed)
        await lab_call(http, learner, f"{steps}/2/open/", failed)
        await type_line(terminal, STEP2_COMMAND, learner.echoes)
        await terminal.expect(b"Hello from Docker", 180)
        await terminal.expect(PROMPT, 60)
        await lab_call(http, learner, f"{steps}/2/check/", failed)
    finally:
        await terminal.close()


async def attend_safely(stack: Stack, code: str, index: int, learner: Learner, delay: float = 0.0) -> None:
    """``attend`` ``delay`` seconds from now (the class's arrival spread over BENCH_CLASS_ARRIVAL)."""
    await asyncio.sleep(delay)
    try:
        await attend(stack, code, index, learner)
    except Exception as exc:  # one learner's failure is reported, the class goes on
        learner.error = f"{type(exc).__name__}: {exc}"


def dashboard_lags(learners: list[Learner], dashboard: Dashboard) -> tuple[list[float], int]:
    """Per step opened or checked, seconds from the API's answer to the first row showing it or a
    later state of the learner's (a row made after two quick changes shows only the second; 0 if the
    row came before the answer); and how many changes the dashboard never showed."""
    lags, missing = [], 0
    for learner in learners:
        seen = [dashboard.seen.get((learner.name, state)) for state, _ in learner.answered]
        for i, (_, answered) in enumerate(learner.answered):
            shown = [t for t in seen[i:] if t is not None]
            if not shown:
                missing += 1
            else:
                lags.append(max(0.0, min(shown) - answered))
    return lags, missing


# -- peers -----------------------------------------------------------------------------------------
async def landing_start_prompt(stack: Stack) -> float:
    """Seconds from ``POST /api/sessions/`` to the first prompt of its terminal (the landing page's Start)."""
    start = time.perf_counter()
    session = await asyncio.to_thread(stack.start_session)
    terminal = await PlaygroundClient.open(stack.terminal_url(session))
    try:
        await terminal.expect(PROMPT, 60)
        return time.perf_counter() - start
    finally:
        await terminal.close()


async def probe_echo(stack: Stack, done: asyncio.Event) -> list[float]:
    """Echo latencies of a busybox terminal typing at a prompt until ``done`` is set, typed by a
    process of its own (:mod:`bench.echoprobe`): during the class, a terminal whose own sandbox is
    idle, so what it measures is the path every keystroke takes (the web tier, the PTY, a wake-up on
    the host) while the class loads the host, apart from the learners' sandboxes being busy with
    their Docker work and from the bench's own loop being busy with fifty learners."""
    session = await asyncio.to_thread(stack.start_session, image="busybox")
    typist = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.echoprobe",
        stack.terminal_url(session),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert typist.stdin is not None
    try:
        await done.wait()
    finally:
        typist.stdin.close()
    output, _ = await asyncio.wait_for(typist.communicate(), 60)
    return [float(seconds) for seconds in json.loads(output)]


async def idle_echo(stack: Stack, keys: int = 200) -> list[float]:
    """Echo latencies of one terminal typing at a prompt on the idle host."""
    session = await asyncio.to_thread(stack.start_session)
    terminal = await PlaygroundClient.open(stack.terminal_url(session))
    echoes: list[float] = []
    try:
        await terminal.expect(PROMPT, 60)
        for _ in range(keys // 20):
            await type_line(terminal, "echo abcdefghijklmno", echoes)
            await terminal.expect(PROMPT, 30)
        return echoes
    finally:
        await terminal.close()


# -- the section -----------------------------------------------------------------------------------
async def loop_lag(done: asyncio.Event, tick: float = 0.01) -> list[float]:
    """How late this process's event loop wakes a task that sleeps ``tick``, again and again until
    ``done``: the part of a learner's echo that is the bench's own client (its fifty learners share
    this one loop, where fifty browsers would each have a machine)."""
    lags = []
    while not done.is_set():
        started = time.perf_counter()
        await asyncio.sleep(tick)
        lags.append(max(time.perf_counter() - started - tick, 0.0))
    return lags


def summary(samples: list[float], scale: float = 1.0) -> dict[str, float | None]:
    if not samples:
        return {"median": None, "p95": None, "p99": None, "max": None}
    return {
        "median": percentile(samples, 0.5) * scale,
        "p95": percentile(samples, 0.95) * scale,
        "p99": percentile(samples, 0.99) * scale,
        "max": max(samples) * scale,
    }


async def run_class(stack: Stack, learners: int, prepare_timeout: float, arrival: float = 0.0) -> dict[str, Any]:
    """The class (see the module's docstring); the learners send their joins evenly over ``arrival``
    seconds (0: all in the same instant)."""
    await wait_ready(stack, WARM_POOL, prepare_timeout)
    peer_prompts = []
    for _ in range(PEER_STARTS):  # each from the warm pool, as the landing page's Start is
        await wait_ready(stack, 1, prepare_timeout)
        peer_prompts.append(await landing_start_prompt(stack))
    peer_echo = await idle_echo(stack)
    mark = uuid.uuid4().hex[:8]
    workshop_id, code = make_workshop(stack, f"teacher-{mark}", f"pw-{mark}", "Bench class", learners, lab=LAB)
    prepared = time.perf_counter()
    stack.manage("shell", "-c", "from playground.workshops.preparing import prepare_workshops; prepare_workshops()")
    await wait_ready(stack, learners + WARM_POOL, prepare_timeout)
    prepared = time.perf_counter() - prepared
    log_start = stack.log_path.stat().st_size
    ws, dashboard = await open_dashboard(stack, mark, workshop_id)
    follower = asyncio.create_task(dashboard.follow(ws))
    class_ = [Learner(f"learner {i + 1:02d} {mark}") for i in range(learners)]
    done = asyncio.Event()
    prober = asyncio.create_task(probe_echo(stack, done))
    lagger = asyncio.create_task(loop_lag(done))
    # Each learner's HTTP calls (blocking, in threads) get a thread of their own, as each learner has
    # a browser of their own: with the loop's default pool (6 threads on 2 cores) a learner's join
    # waited behind others' lab checks, and that wait was counted as the site's.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(learners + 4))
    started = time.perf_counter()
    try:
        arriving = [arrival * i / learners for i in range(learners)]  # evenly, the first at once
        await asyncio.gather(*(attend_safely(stack, code, i, x, arriving[i]) for i, x in enumerate(class_)))
        done.set()
        await asyncio.sleep(2)  # the last rows
        probe = await prober
        client_lags = await lagger
    finally:
        done.set()
        prober.cancel()
        lagger.cancel()
        follower.cancel()
        await ws.close()
    everyone = time.perf_counter() - started
    class_log = stack.log_path.read_bytes()[log_start:].decode(errors="replace")
    creates = agent_creates(class_log)
    provisions = provision_tasks(class_log)
    ok = [learner for learner in class_ if not learner.error]
    lags, missing = dashboard_lags(ok, dashboard)
    joins = [learner.joined_at for learner in ok]
    return {
        "learners": learners,
        "arrival_s": arrival,
        "failed_learners": len(class_) - len(ok),
        "errors": [f"{learner.name}: {learner.error}" for learner in class_ if learner.error][:10],
        "prepared_s": prepared,
        "all_joined_s": max(joins) if joins else None,
        "class_s": everyone,
        "join_to_prompt_s": summary([learner.prompt_s for learner in ok]),
        "join_answer_s": summary(joins),
        "joined_to_prompt_s": summary([learner.prompt_s - learner.joined_at for learner in ok]),
        "joined_to_shown_s": summary([learner.shown_s - learner.joined_at for learner in ok]),
        "shown_to_opened_s": summary([learner.opened_s - learner.shown_s for learner in ok]),
        "opened_to_output_s": summary([learner.output_s - learner.opened_s for learner in ok]),
        "output_to_prompt_s": summary([learner.prompt_s - learner.output_s for learner in ok]),
        "landing_start_to_prompt_s": summary(peer_prompts),
        "echo_ms": summary([x for learner in ok for x in learner.echoes], 1000),
        "idle_echo_ms": summary(peer_echo, 1000),
        "probe_echo_ms": summary(probe, 1000),
        "client_loop_lag_ms": summary(client_lags, 1000),
        "dashboard_lag_s": summary(lags),
        "dashboard_changes": len(lags) + missing,
        "dashboard_missing": missing,
        "dashboard_messages": dashboard.messages,
        "agent_creates_ms": summary([ms for ms, _ in creates]),
        "agent_creates_warm": sum(1 for _, warm in creates if warm),
        "agent_creates": len(creates),
        "provision_task_s": summary([seconds for seconds, _ in provisions]),
        "provisions_spread_s": provision_spread(provisions),
    }


PROVISION_DONE = re.compile(
    r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/ForkPoolWorker-\d+\] "
    r"Task playground\.sandboxes\.tasks\.provision_instance\[[^\]]+\] succeeded in ([0-9.]+)s"
)


def provision_tasks(log: str) -> list[tuple[float, float]]:
    """The Celery worker's provisioning tasks in a stretch of the stack's log: seconds each took, and
    when each ended (seconds of the day): where the time between a join's answer and the prompt goes,
    the worker's queue or the tasks themselves."""
    found = []
    for match in PROVISION_DONE.finditer(log):
        clock = match.group(1).split()[1].replace(",", ".")
        hours, minutes, seconds = clock.split(":")
        found.append((float(match.group(2)), int(hours) * 3600 + int(minutes) * 60 + float(seconds)))
    return found


def provision_spread(provisions: list[tuple[float, float]]) -> float | None:
    """Seconds from the first provisioning task's end to the last's: how long the worker took to
    work through the class's queue."""
    ends = [end for _, end in provisions]
    return max(ends) - min(ends) if ends else None


def agent_creates(log: str) -> list[tuple[float, bool]]:
    """The agent's creates in a stretch of the stack's log: milliseconds each, and whether it was
    handed a pooled sandbox (where the time after a join goes: the agent, or what is before it)."""
    found = re.finditer(r"created sandbox \S+ \(node1, image \S+\) in ([0-9.]+) ms( \(warm)?", log)
    return [(float(match.group(1)), match.group(2) is not None) for match in found]


async def wait_ready(stack: Stack, count: int, timeout: float) -> None:
    """Wait until the agent's pool holds ``count`` docker sandboxes ready (their engines up)."""
    deadline = time.perf_counter() + timeout
    while (ready := pooled_ready(stack)) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {ready} of {count} docker sandboxes pooled within {timeout:.0f} s")
        await asyncio.sleep(1)


def pooled_ready(stack: Stack) -> int:
    """How many docker sandboxes the agent's pool holds ready (its ``warm`` op)."""
    script = (
        "from playground.sandboxes.agentclient import client; print(client().call('warm')['ready'].get('docker', 0))"
    )
    return int(stack.manage("shell", "-c", script).split()[-1])


def run(learners: int) -> dict[str, Any]:
    """The section: measured, printed, returned. The site runs BENCH_CLASS_WEB_PROCESSES web servers
    (PLAYGROUND_WEB_PROCESSES; 2, as docs/workshops.md advises for a class on this machine)."""
    web_processes = os.environ.get("BENCH_CLASS_WEB_PROCESSES", "2")
    arrival = float(os.environ.get("BENCH_CLASS_ARRIVAL", "0"))
    arriving = "at once" if not arrival else f"over {arrival:.0f} s"
    print(
        f"classroom: {learners} scripted learners join a workshop of docker-101 {arriving}, reach their prompt, "
        f"do its first two steps and checks, watched by the instructor's dashboard ({web_processes} web "
        "processes, PLAYGROUND_WEB_PROCESSES):",
        flush=True,
    )
    room = str(learners + PEER_STARTS + WARM_POOL + 10)
    stack = docker.docker_stack(
        PLAYGROUND_DEFAULT_IMAGE="docker",
        PLAYGROUND_WARM_POOL=str(WARM_POOL),
        PLAYGROUND_HOST_MAX_SANDBOXES=room,
        PLAYGROUND_MAX_SESSIONS=room,
        PLAYGROUND_WEB_PROCESSES=web_processes,
    )
    try:
        result = asyncio.run(run_class(stack, learners, prepare_timeout=600, arrival=arrival))
    except Exception:
        print(f"the class failed; the stack's log ends with:\n{stack.log_tail(40)}", flush=True)
        raise
    finally:
        stack.end_every_session()
        left = docker.stop_stack(stack)  # the pool's sandboxes go with the stack
    result["left_on_host"] = left
    print_table(result)
    return result


def print_table(result: dict[str, Any]) -> None:
    def met(value: float | None, target: float) -> str:
        return "n/a" if value is None else ("met" if value <= target else "MISSED")

    def num(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    prompt, peer = result["join_to_prompt_s"], result["landing_start_to_prompt_s"]
    echo, idle, lag = result["echo_ms"], result["idle_echo_ms"], result["dashboard_lag_s"]
    probe = result["probe_echo_ms"]
    print(f"  room prepared ({result['learners']} docker sandboxes pooled) in {result['prepared_s']:.0f} s", flush=True)
    print(
        f"  all joined within {num(result['all_joined_s'], 1)} s (target {TARGETS['join_s']:.0f} s: "
        f"{met(result['all_joined_s'], TARGETS['join_s'])}); learners failed: {result['failed_learners']}",
        flush=True,
    )
    answer, after = result["join_answer_s"], result["joined_to_prompt_s"]
    print(
        f"  join sent to first prompt: median {num(prompt['median'], 2)} s, p95 {num(prompt['p95'], 2)} s; of which "
        f"the join's answer median {num(answer['median'], 2)} s, p95 {num(answer['p95'], 2)} s, and from the join's "
        f"answer to the prompt median {num(after['median'], 2)} s, p95 {num(after['p95'], 2)} s (target "
        f"{TARGETS['prompt_p95_s']:.0f} s: {met(after['p95'], TARGETS['prompt_p95_s'])}); the landing page's Start "
        f"on the same stack, to its prompt: median {num(peer['median'], 2)} s",
        flush=True,
    )
    stages = [
        ("the session's JSON", "joined_to_shown_s"),
        ("the websocket accepted", "shown_to_opened_s"),
        ("the first output", "opened_to_output_s"),
        ("the prompt", "output_to_prompt_s"),
    ]
    print(
        "  from the join's answer, then each stage after the one before: "
        + "; ".join(
            f"{name} median {num(result[key]['median'], 2)} s, p95 {num(result[key]['p95'], 2)} s"
            for name, key in stages
        ),
        flush=True,
    )
    print(
        f"  dashboard lag after a step or check: median {num(lag['median'], 3)} s, p95 {num(lag['p95'], 3)} s "
        f"(target {TARGETS['dashboard_p95_s']:.0f} s: {met(lag['p95'], TARGETS['dashboard_p95_s'])}); "
        f"{result['dashboard_changes']} changes, {result['dashboard_missing']} never shown",
        flush=True,
    )
    print(
        f"  echo while the class works: median {num(echo['median'], 1)} ms, p99 {num(echo['p99'], 1)} ms "
        f"(target {TARGETS['echo_p99_ms']:.0f} ms: {met(echo['p99'], TARGETS['echo_p99_ms'])}); "
        f"idle host before: median {num(idle['median'], 1)} ms, p99 {num(idle['p99'], 1)} ms; a busybox terminal "
        f"typing meanwhile (its own sandbox idle): median {num(probe['median'], 1)} ms, p99 {num(probe['p99'], 1)} ms",
        flush=True,
    )
    client = result["client_loop_lag_ms"]
    print(
        f"  the learners' client itself (one process, one event loop for all of them): a wake-up late by median "
        f"{num(client['median'], 1)} ms, p99 {num(client['p99'], 1)} ms",
        flush=True,
    )
    creates = result["agent_creates_ms"]
    print(
        f"  the agent's creates for the class: {result['agent_creates']} ({result['agent_creates_warm']} from the "
        f"pool), median {num(creates['median'], 1)} ms, p95 {num(creates['p95'], 1)} ms",
        flush=True,
    )
    tasks = result["provision_task_s"]
    print(
        f"  the worker's provisioning tasks: median {num(tasks['median'], 3)} s, p95 {num(tasks['p95'], 3)} s each; "
        f"the first to the last ended {num(result['provisions_spread_s'], 2)} s apart",
        flush=True,
    )
    for error in result["errors"]:
        print(f"  ! {error}", flush=True)
    if result["left_on_host"]:
        print(f"  ! left on the host: {result['left_on_host']}", flush=True)
