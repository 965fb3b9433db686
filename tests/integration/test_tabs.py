"""Terminal tabs (issue #5): more shells in one instance, each independent, each closed alone.

One stack of its own: at most 3 terminals a sandbox (to reach the limit quickly) and a
reconciliation every second (the agent-restart test).
"""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.wire.client import AgentClient
from tests.churn import census, counts, open_files
from tests.integration.test_agent_restart import restart
from tests.stack import Response, Stack, Terminal
from tests.waiting import eventually, eventually_async

CLOSE_NORMAL, CLOSE_UNKNOWN, CLOSE_UNAVAILABLE = 1000, 4404, 4503


@pytest.fixture(scope="module")
def tabs_stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_MAX_TERMINALS="3", PLAYGROUND_RECONCILE_INTERVAL="1") as running:
        yield running


@pytest.fixture(autouse=True)
def end_sessions(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test must not leave its sessions (and their tabs) to the next one."""
    yield
    if "tabs_stack" in request.fixturenames:
        request.getfixturevalue("tabs_stack").end_started_sessions()


def terminals_path(session: dict[str, Any], number: int | None = None) -> str:
    path = f"/api/sessions/{session['id']}/instances/node1/terminals/"
    return path if number is None else f"{path}{number}/"


def api(stack: Stack, method: str, session: dict[str, Any], number: int | None = None, **headers: str) -> Response:
    return stack.request(
        method, terminals_path(session, number), headers={"Authorization": f"Session {session['key']}", **headers}
    )


def open_tab(stack: Stack, session: dict[str, Any]) -> dict[str, Any]:
    response = api(stack, "POST", session)
    assert response.status == 201, response.body
    return response.json()


async def connect(stack: Stack, session: dict[str, Any], path: str) -> Terminal:
    terminal = await Terminal.open(f"ws://127.0.0.1:{stack.port}{path}?key={session['key']}")
    await terminal.expect("# ", timeout=20)
    return terminal


async def session_with_tab(stack: Stack) -> tuple[dict[str, Any], Terminal, Terminal, dict[str, Any]]:
    """A session with its first terminal and one tab, both connected and at a prompt."""
    session = stack.start_session()
    first = await connect(stack, session, session["instances"][0]["terminal"])
    tab = open_tab(stack, session)
    return session, first, await connect(stack, session, tab["terminal"]), tab


async def states(terminal: Terminal, *pids: str) -> dict[str, str]:
    """Each pid's process state seen from ``terminal``'s shell: R, S, Z (exited, not yet reaped)... or gone."""
    script = "; ".join(f"echo {p}:$(awk '/^State/{{print $2}}' /proc/{p}/status 2>/dev/null || true)" for p in pids)
    lines = (await terminal.run(script)).split()
    return {pid: state or "gone" for pid, _, state in (line.partition(":") for line in lines)}


async def test_a_second_terminal_runs_its_own_shell_beside_the_first(tabs_stack: Stack) -> None:
    session, first, tab, opened = await session_with_tab(tabs_stack)
    assert opened["id"] == 1
    assert opened["terminal"] == session["instances"][0]["terminal"] + "1/"
    first_pid, tab_pid = (await first.run("echo $$")).strip(), (await tab.run("echo $$")).strip()
    assert first_pid != tab_pid
    assert tab_pid in [line.split()[0] for line in (await first.run("ps")).splitlines()[1:]]
    assert (await tab.run("hostname; pwd; id -u")).split() == (await first.run("hostname; pwd; id -u")).split()
    marker = uuid.uuid4().hex
    await tab.run(f"echo {marker}")
    assert marker not in (await first.run("echo first-is-quiet"))
    assert marker.encode() not in first.output
    listed = api(tabs_stack, "GET", session).json()["terminals"]
    assert [t["id"] for t in listed] == [0, 1]
    assert listed[1]["terminal"] == opened["terminal"]
    await first.close()
    await tab.close()


async def test_closing_a_tab_kills_its_shell_and_its_jobs_and_leaves_the_first(tabs_stack: Stack) -> None:
    session, first, tab, opened = await session_with_tab(tabs_stack)
    tab_pid = (await tab.run("echo $$")).strip()
    job_pid = (await tab.run("sleep 1000 & echo $!")).strip()
    assert (await states(first, tab_pid, job_pid))[job_pid] in ("S", "R")
    assert api(tabs_stack, "DELETE", session, opened["id"]).status == 204
    event = await tab.expect_event("exit")
    assert event["reason"] == "closed"
    assert event["terminal"] == opened["id"]
    assert await tab.closed() == CLOSE_NORMAL
    await eventually_async(
        lambda: states(first, tab_pid, job_pid),
        "the tab's shell and job exited",
        until=lambda found: set(found.values()) <= {"Z", "gone"},
    )
    assert (await first.run("echo still-here")).strip() == "still-here"
    assert api(tabs_stack, "DELETE", session, opened["id"]).status == 204  # again: harmless
    assert [t["id"] for t in api(tabs_stack, "GET", session).json()["terminals"]] == [0]
    gone = await Terminal.open(f"ws://127.0.0.1:{tabs_stack.port}{opened['terminal']}?key={session['key']}")
    assert await gone.closed() == CLOSE_UNKNOWN
    await first.close()


async def test_a_tab_whose_shell_exits_ends_alone_and_the_session_lives_on(tabs_stack: Stack) -> None:
    session, first, tab, opened = await session_with_tab(tabs_stack)
    await tab.type("exit\n")
    event = await tab.expect_event("exit")
    assert event["reason"] == "shell_exited"
    assert event["terminal"] == opened["id"]
    assert await tab.closed() == CLOSE_NORMAL
    eventually(
        lambda: [t["id"] for t in api(tabs_stack, "GET", session).json()["terminals"]],
        "only the first terminal listed, not the exited tab",
        30,
        until=lambda ids: ids == [0],
    )
    assert (await first.run("echo $((2+3))")).strip() == "5"
    assert not [e for e in first.events if e.get("type") == "exit"]
    await first.close()


async def test_a_keeper_restart_then_an_agent_restart_still_keeps_the_tab(tabs_stack: Stack) -> None:
    session, first, tab, opened = await session_with_tab(tabs_stack)
    identity = (await tab.run(f"MARK={uuid.uuid4().hex}; echo $MARK $$")).strip()
    kept = tabs_stack.kept_terminals()
    assert any(key.endswith("/1") for key in kept), kept
    restart(tabs_stack, "keeper", signal.SIGKILL)  # the agent's own copies keep the shells alive
    assert (await tab.run("echo $MARK $$")).strip() == identity
    # The keeper holding both terminals, not the agent's log line, which comes before each hand-over:
    # a CI run's agent was killed between the tab's and the first terminal's, and nothing was adopted.
    eventually(
        lambda: tabs_stack.kept_terminals() >= kept,
        f"the agent hands the terminals {sorted(kept)} to the new keeper",
        30,
        explain=tabs_stack.log_tail,
    )
    restart(tabs_stack, "agent", signal.SIGKILL)
    assert await tab.closed(timeout=30) == CLOSE_UNAVAILABLE
    again = await Terminal.open(f"ws://127.0.0.1:{tabs_stack.port}{opened['terminal']}?key={session['key']}")
    await again.expect("# ", timeout=20)
    assert (await again.run("echo $MARK $$")).strip() == identity
    await again.close()
    await first.close()


@pytest.mark.parametrize("number", ["99999999999", "7"])
async def test_a_websocket_to_a_tab_that_does_not_exist_is_closed_with_4404(tabs_stack: Stack, number: str) -> None:
    session = tabs_stack.start_session()
    path = f"{session['instances'][0]['terminal']}{number}/"
    terminal = await Terminal.open(f"ws://127.0.0.1:{tabs_stack.port}{path}?key={session['key']}")
    assert await terminal.closed(timeout=20) == CLOSE_UNKNOWN


async def test_a_sandbox_has_at_most_the_configured_number_of_terminals(tabs_stack: Stack) -> None:
    session = tabs_stack.start_session()
    first = await connect(tabs_stack, session, session["instances"][0]["terminal"])
    opened = [open_tab(tabs_stack, session) for _ in range(2)]  # with the first: 3, the limit
    refused = api(tabs_stack, "POST", session)
    assert refused.status == 409 and refused.json()["error"] == "too_many_terminals", refused.body
    assert "3 terminals" in refused.json()["message"]
    assert api(tabs_stack, "DELETE", session, opened[0]["id"]).status == 204
    assert open_tab(tabs_stack, session)["id"] == 3  # numbers are not reused
    await first.close()


async def test_a_tab_keeps_its_shell_when_the_agent_is_killed(tabs_stack: Stack) -> None:
    session, first, tab, opened = await session_with_tab(tabs_stack)
    identity = (await tab.run(f"MARK={uuid.uuid4().hex}; echo $MARK $$")).strip()
    await tab.run("echo written-before-the-restart")
    restart(tabs_stack, "agent", signal.SIGKILL)
    assert await tab.closed(timeout=30) == CLOSE_UNAVAILABLE
    again = await Terminal.open(f"ws://127.0.0.1:{tabs_stack.port}{opened['terminal']}?key={session['key']}")
    await again.expect("written-before-the-restart", timeout=20)
    assert (await again.run("echo $MARK $$")).strip() == identity
    assert [t["id"] for t in api(tabs_stack, "GET", session).json()["terminals"]] == [0, 1]
    assert api(tabs_stack, "DELETE", session, opened["id"]).status == 204  # the adopted tab closes too
    assert (await again.expect_event("exit"))["reason"] == "closed"
    await again.close()
    await first.close()


def terminal_files(stack: Stack, part: str) -> list[str]:
    """The terminals ``part`` (agent or keeper) holds open: PTY masters, replay memfds, shells' pidfds."""
    return [f for f in open_files(stack.pid_of(part)) if any(k in f for k in ("ptmx", "memfd:", "[pidfd]"))]


async def test_ending_a_session_with_busy_tabs_leaves_nothing_on_the_host(tabs_stack: Stack) -> None:
    tabs_stack.assert_clean_host()
    before = census(tabs_stack)
    assert not terminal_files(tabs_stack, "agent")
    assert not terminal_files(tabs_stack, "keeper")
    session, first, tab, _opened = await session_with_tab(tabs_stack)
    second = await connect(tabs_stack, session, open_tab(tabs_stack, session)["terminal"])
    for terminal in (first, tab, second):
        await terminal.run("sleep 1000 & sleep 1000 & true")
    tabs_stack.end_session(session)
    for terminal in (tab, second):
        assert (await terminal.expect_event("exit", timeout=20))["reason"] == "deleted"
    tabs_stack.assert_clean_host()
    assert counts(census(tabs_stack)) == counts(before)
    assert not terminal_files(tabs_stack, "agent")
    assert not terminal_files(tabs_stack, "keeper")
    await first.close()


@pytest.mark.parametrize(
    "method,number,headers,status,code",
    [
        ("POST", None, {"Authorization": "Session wrong"}, 403, "forbidden"),
        ("POST", None, {"Origin": "http://evil.example"}, 403, "cross_site"),
        ("PUT", None, {}, 405, "method_not_allowed"),
        ("DELETE", 0, {}, 409, "first_terminal"),
        ("DELETE", 99999999999, {}, 404, "unknown_terminal"),
        ("GET", 1, {}, 405, "method_not_allowed"),
    ],
)
async def test_bad_terminal_requests_get_a_clear_4xx(
    tabs_stack: Stack, method: str, number: int | None, headers: dict[str, str], status: int, code: str
) -> None:
    session = tabs_stack.start_session()
    response = api(tabs_stack, method, session, number, **headers)
    assert response.status == status and response.json()["error"] == code, response.body
    assert response.json()["message"]
    tabs_stack.end_session(session)


async def test_an_unknown_instance_and_a_body_with_fields_are_refused(tabs_stack: Stack) -> None:
    session = tabs_stack.start_session()
    unknown = tabs_stack.request(
        "POST",
        f"/api/sessions/{session['id']}/instances/node9/terminals/",
        headers={"Authorization": f"Session {session['key']}"},
    )
    assert unknown.status == 404, unknown.body
    assert unknown.json()["error"] == "unknown_instance"
    body = tabs_stack.request(
        "POST", terminals_path(session), {"shell": "/bin/bash"}, headers={"Authorization": f"Session {session['key']}"}
    )
    assert body.status == 400, body.body
    assert body.json()["error"] == "unknown_field"
    tabs_stack.end_session(session)
    ended = api(tabs_stack, "POST", session)
    assert ended.status == 409, ended.body
    assert ended.json()["error"] == "session_ended"


async def test_a_tab_of_a_pooled_sandbox_works_and_ctrl_c_of_the_launcher_ends_it_leaving_nothing() -> None:
    stack = Stack.create(PLAYGROUND_WARM_POOL="1")
    try:
        stack.start()
        agent = AgentClient(stack.data_dir / "run" / "agent.sock")
        await eventually_async(
            lambda: agent.request("list"),
            "one busybox sandbox in the warm pool",
            30,
            0.1,
            until=lambda listing: listing["warm"].get("busybox") == 1,
        )
        _session, _first, tab, _opened = await session_with_tab(stack)
        sandbox = (await agent.request("list"))["sandboxes"][0]
        assert sandbox["runtime_id"] != sandbox["id"]
        assert sandbox["terminals"] == [0, 1]  # it came from the pool
        assert (await tab.run("hostname")).strip() == "node1"
        await tab.run("sleep 1000 & true")
    except BaseException:
        stack.stop()
        raise
    assert stack.stop(keep=True) == 0
    assert (await tab.expect_event("exit", timeout=5))["reason"] == "shutdown"
    state = stack.host_state()
    assert not any(state.values()), state
    shutil.rmtree(stack.data_dir)
