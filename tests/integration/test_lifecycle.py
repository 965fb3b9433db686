"""Session lifecycle against a real stack with short timings (``lifecycle_stack`` in conftest):
warnings, expiry, idle reaping, extension, per-address and global capacity, and the repair of
provisioning a lost worker left unfinished.

Each test plays its own visitors: the stack trusts one proxy, so ``X-Forwarded-For`` names the
visitor's address. Sessions live 5 s unless extended (by 30 s, up to 65 s from their start).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.stack import Response, Stack, Terminal
from tests.visitors import no_live_sessions, start, visitor, write_database, write_database_together
from tests.waiting import eventually


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Session {session['key']}"}


def post_session(stack: Stack, who: dict[str, str]) -> Response:
    response = stack.request("POST", "/api/sessions/", {}, headers=who)
    if response.status == 201:
        stack.started_sessions.append(response.json())
    return response


def extend(stack: Stack, session: dict[str, Any]) -> Response:
    return stack.request("POST", f"/api/sessions/{session['id']}/extend/", headers=auth(session))


def shown(stack: Stack, session: dict[str, Any]) -> dict[str, Any]:
    response = stack.request("GET", f"/api/sessions/{session['id']}/", headers=auth(session))
    assert response.status == 200, response.body
    return response.json()


def ended(stack: Stack, session: dict[str, Any], reason: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until the session is ENDED (its sandbox destroyed) and check why."""
    body = eventually(lambda: (b := shown(stack, session))["state"] == "ended" and b, "the end", timeout)
    assert body["ended_reason"] == reason, body
    return body


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


# -- expiry and warnings (acceptance 2) -------------------------------------------------------
async def test_a_viewer_is_warned_then_told_the_session_expired_and_its_sandbox_is_gone(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    stack.assert_clean_host()
    session = start(stack, visitor())
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=4)
    await terminal.type("sleep 1000 & sleep 1000 &\n")  # processes the destruction must kill
    assert len(stack.host_state()["sandbox_dirs"]) == 1
    while not terminal.events or terminal.events[-1]["type"] != "exit":
        await terminal.receive_one(timeout=15)
    exit_at = time.monotonic()
    kinds = [event["type"] for event in terminal.events]
    warnings = [event for event in terminal.events if event["type"] == "warning"]
    assert warnings and kinds.index("warning") < kinds.index("exit"), terminal.events
    final = warnings[-1]
    assert final["stage"] == "final"
    assert final["reason"] == "expiring"
    assert final["seconds_left"] <= 1
    assert "ends in 1 second" in final["message"]
    assert final["extendable"] is True
    assert terminal.events[-1]["reason"] == "expired"
    assert "time ran out" in terminal.events[-1]["message"]
    assert await terminal.closed() == 4410
    stack.assert_clean_host(timeout=15)
    assert time.monotonic() - exit_at < 15
    ended(stack, session, "expired")
    assert re.search(rf"reaping session {session['id']} \(age \d+s, idle \d+s\): expired", stack.log_path.read_text())


async def test_a_viewer_who_connects_in_the_last_seconds_gets_only_the_most_urgent_warning(
    lifecycle_stack: Stack,
) -> None:
    session = start(lifecycle_stack, visitor())
    await asyncio.sleep(4.2)  # 0.8 s left: past both leads (2.5 s and 1 s)
    terminal = await Terminal.open(lifecycle_stack.terminal_url(session))
    await terminal.expect_event("exit", timeout=15)
    stages = [event["stage"] for event in terminal.events if event["type"] == "warning"]
    assert stages in ([], ["final"])  # none if the connection came after the deadline
    await terminal.close()


# -- idleness ----------------------------------------------------------------------------------
def test_a_session_nobody_watches_ends_as_idle(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    session = start(stack, visitor(), extensions=1)  # lives 35 s; idle after 6 s
    ended(stack, session, "idle", timeout=25)
    assert re.search(rf"reaping session {session['id']} \(age \d+s, idle \d+s\): idle", stack.log_path.read_text())


async def test_a_connected_viewer_keeps_the_session_from_going_idle(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    session = start(stack, visitor(), extensions=2)  # lives 65 s
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    await asyncio.sleep(15)  # two and a half idle timeouts, without typing
    assert shown(stack, session)["state"] == "active"
    assert (await terminal.run("echo still-here")).strip() == "still-here"
    await terminal.close()
    left_at = time.monotonic()
    ended(stack, session, "idle", timeout=25)
    assert time.monotonic() - left_at > 3  # idleness counts from when the viewer left


# -- extension ----------------------------------------------------------------------------------
async def test_extending_adds_time_up_to_the_longest_lifetime_and_viewers_hear_of_it(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    session = start(stack, visitor())
    terminal = await Terminal.open(stack.terminal_url(session))
    first = await terminal.expect_event("expiry")
    assert first["expires_at"] == session["expires_at"]
    assert first["max_expires_at"] == session["max_expires_at"]
    once = extend(stack, session)
    assert once.status == 200, once.body
    assert when(once.json()["expires_at"]) - when(session["expires_at"]) == timedelta(seconds=30)
    assert (await terminal.expect_event("expiry"))["expires_at"] == once.json()["expires_at"]
    twice = extend(stack, session)
    assert twice.status == 200, twice.body
    assert twice.json()["expires_at"] == session["max_expires_at"]
    assert when(session["max_expires_at"]) - when(session["created_at"]) == timedelta(seconds=65)
    refused = extend(stack, session)
    assert refused.status == 409, refused.body
    assert refused.json()["error"] == "longest_lifetime"
    assert "(1 minute from its start)" in refused.json()["message"]
    assert refused.json()["message"].endswith(".")
    assert shown(stack, session)["expires_at"] == session["max_expires_at"]
    await terminal.close()


def test_extending_needs_the_key_a_live_session_and_no_body(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    session = start(stack, visitor())
    path = f"/api/sessions/{session['id']}/extend/"
    assert stack.request("POST", path, headers={"Authorization": "Session wrong"}).status == 403
    assert stack.request("POST", "/api/sessions/00000000-0000-0000-0000-000000000000/extend/").status == 404
    assert stack.request("GET", path, headers=auth(session)).status == 405
    assert stack.request("POST", path, headers={**auth(session), "Origin": "http://evil.example"}).status == 403
    bad = stack.request("POST", path, {"seconds": 5}, headers=auth(session))
    assert bad.status == 400, bad.body
    assert bad.json()["message"].endswith(".")
    stack.end_session(session)
    gone = extend(stack, session)
    assert gone.status == 409, gone.body
    assert gone.json()["error"] == "session_ended"
    assert "start a new one" in gone.json()["message"]


# -- capacity (acceptance 5) ---------------------------------------------------------------------
def test_one_address_may_run_only_its_share_of_sessions_and_a_freed_slot_is_usable(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    no_live_sessions(stack)
    alice, bob = visitor(), visitor()
    first, _second = start(stack, alice, extensions=1), start(stack, alice, extensions=1)
    refused = post_session(stack, alice)
    assert refused.status == 429, refused.body
    assert refused.json()["error"] == "too_many_sessions"
    assert refused.headers["Retry-After"] == "10"
    assert "already have 2 playgrounds running" in refused.json()["message"]
    assert post_session(stack, bob).status == 201  # another visitor is not affected
    stack.end_session(first)
    assert post_session(stack, alice).status == 201


def test_an_address_may_start_only_so_many_sessions_a_minute(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    no_live_sessions(stack)
    carol = visitor()
    for _ in range(4):
        stack.end_session(start(stack, carol))
        no_live_sessions(stack)
    refused = post_session(stack, carol)
    assert refused.status == 429, refused.body
    assert refused.json()["error"] == "too_many_starts"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "4 playgrounds within a minute" in refused.json()["message"]
    assert refused.json()["message"].endswith("try again.")


def test_starts_refused_for_too_many_running_sessions_do_not_count_against_the_start_rate(
    lifecycle_stack: Stack,
) -> None:
    # 2 running (her most) and 2 of her 4 starts a minute; the page retries a refused start every
    # 10 s, and each refusal used to count as a start: the third said she had started 4 within a minute.
    stack = lifecycle_stack
    no_live_sessions(stack)
    grace = visitor()
    running = [start(stack, grace, extensions=1) for _ in range(2)]
    for attempt in range(3):
        refused = post_session(stack, grace)
        assert refused.status == 429, refused.body
        assert refused.json()["error"] == "too_many_sessions", (attempt, refused.json()["message"])
    stack.end_session(running[0])
    third = start(stack, grace)  # her third start within the minute, under the limit of 4
    stack.end_session(third)


def test_a_full_site_answers_503_with_retry_after_and_a_freed_slot_is_usable(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    no_live_sessions(stack)
    dave, erin, frank = visitor(), visitor(), visitor()
    sessions = [start(stack, who, extensions=1) for who in (dave, dave, erin, erin)]
    refused = post_session(stack, frank)
    assert refused.status == 503, refused.body
    assert refused.json()["error"] == "at_capacity"
    assert refused.headers["Retry-After"] == "30"
    assert refused.json()["message"] == "All playgrounds are in use right now; please try again in a minute."
    stack.end_session(sessions[0])
    ended(stack, sessions[0], "deleted")
    assert post_session(stack, frank).status == 201


def test_loopback_is_exempt_from_per_address_limits(lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    no_live_sessions(stack)
    at_once = [start(stack, {}) for _ in range(3)]  # above the 2 a visitor may run
    for session in at_once:
        stack.end_session(session)
    no_live_sessions(stack)
    for _ in range(2):  # 5 starts within a minute, above the 4 a visitor may make
        stack.end_session(start(stack, {}))


# -- repair (a worker killed while provisioning) ---------------------------------------------------
STUCK = "UPDATE sandboxes_instance SET state = 'provisioning', state_since = '2000-01-01 00:00:00' WHERE session_id = ?"


@pytest.mark.parametrize("ends_meanwhile", [False, True])
def test_an_instance_a_lost_worker_left_provisioning_is_repaired(lifecycle_stack: Stack, ends_meanwhile: bool) -> None:
    stack = lifecycle_stack
    session = start(stack, visitor(), extensions=1)
    eventually(lambda: shown(stack, session)["instances"][0]["state"] == "running", "the sandbox running", 30)
    key = session["id"].replace("-", "")
    if ends_meanwhile:
        # What a worker killed in the middle of provision_instance leaves, and the session ended
        # meanwhile (as the API's DELETE leaves it), in one step: the reaper, every second, sees both.
        ending = "UPDATE sandboxes_session SET state = 'ending', ended_reason = 'deleted', ended_at = ? WHERE id = ?"
        write_database_together(
            stack, (STUCK, (key,)), (ending, (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), key))
        )
        ended(stack, session, "deleted")
        assert "was provisioning for" in stack.log_path.read_text()
    else:
        write_database(stack, STUCK, key)  # what a worker killed in the middle of provision_instance leaves
        eventually(
            lambda: f"re-queueing provisioning of node1 of session {session['id']}" in stack.log_path.read_text(),
            "the repair",
            15,
        )
        eventually(lambda: shown(stack, session)["instances"][0]["state"] == "running", "running again", 15)
        stack.end_session(session)
        ended(stack, session, "deleted")
    stack.assert_clean_host(timeout=15)
