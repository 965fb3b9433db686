"""The labs API against a real stack: catalogue and detail, sessions started with a lab, and
a step's setup, check and skip running in the visitor's own sandbox through the agent."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.labkit import add_lab, step
from tests.stack import Response, Stack, Terminal
from tests.waiting import eventually

# Step 2's check fails with a hint until /root/two exists; its solve makes it.
STEPS = [
    step(
        "Make one",
        check="test -f /root/one || { echo 'No /root/one yet: run touch /root/one'; exit 1; }",
        solve="touch /root/one",
        foreground="cd /root",
    ),
    step(
        "Make two",
        check="test -f /root/one && test -f /root/two || { echo 'Make /root/two'; exit 1; }",
        solve="touch /root/two",
        setup="echo ready > /root/setup-2",
    ),
    step("Count", check="test -f /root/one && test -f /root/two && test -f /root/setup-2"),
]


@pytest.fixture(scope="module", autouse=True)
def labs(stack: Stack) -> None:
    add_lab(stack, "api-basics", STEPS, tags=["test", "files"], title="Files, one by one")
    add_lab(stack, "api-basics", STEPS, language="ko", tags=["test", "files"], title="파일 하나씩")
    add_lab(
        stack,
        "api-limits",
        [
            step("Forever", check="echo looping; while :; do :; done"),
            step("Flood", check="head -c 100000000 /dev/zero | tr '\\0' x"),
            step("Broken solve", solve="echo cannot; exit 4"),
            step("After", check="true"),
        ],
        tags=["test", "limits"],
    )


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Session {session['key']}"}


def post(stack: Stack, session: dict[str, Any], path: str, body: Any = None) -> Response:
    return stack.request("POST", f"/api/sessions/{session['id']}/lab/{path}", body, headers=auth(session))


def ready(stack: Stack, session: dict[str, Any]) -> None:
    """Wait until the session's sandbox runs (a step request says ``not_ready`` before)."""
    eventually(
        lambda: stack.shown(session)["instances"][0]["state"],
        f"the sandbox of session {session['id']} running",
        30,
        0.1,
        until=lambda state: state == "running",
    )


def lab_session(stack: Stack, slug: str = "api-basics", **body: Any) -> dict[str, Any]:
    session = stack.start_session(lab=slug, **body)
    ready(stack, session)
    return session


# -- catalogue and detail ----------------------------------------------------------------------------
def test_the_catalogue_lists_each_lab_in_each_language_with_tags_and_languages(stack: Stack) -> None:
    body = stack.request("GET", "/api/labs/").json()
    mine = {(lab["slug"], lab["language"]) for lab in body["labs"]}
    assert {("api-basics", "en"), ("api-basics", "ko"), ("api-limits", "en")} <= mine
    assert {"files", "limits"} <= set(body["tags"])
    assert {"en", "ko"} <= set(body["languages"])
    entry = next(lab for lab in body["labs"] if lab["slug"] == "api-basics" and lab["language"] == "en")
    assert entry["steps"] == 3
    assert entry["languages"] == ["en", "ko"]
    assert entry["title"] == "Files, one by one"


@pytest.mark.parametrize(
    "query, expected",
    [
        ("q=one+by", {("api-basics", "en")}),
        ("q=%ED%95%98%EB%82%98%EC%94%A9", {("api-basics", "ko")}),
        ("tag=limits", {("api-limits", "en")}),
        ("language=ko&tag=files", {("api-basics", "ko")}),
        ("q=nothing-like-this", set()),
    ],
)
def test_the_catalogue_filters_by_words_tag_and_language(stack: Stack, query: str, expected: set) -> None:
    labs = stack.request("GET", f"/api/labs/?{query}").json()["labs"]
    assert {(lab["slug"], lab["language"]) for lab in labs if lab["slug"].startswith("api-")} == expected


def test_a_search_too_long_is_refused(stack: Stack) -> None:
    response = stack.request("GET", "/api/labs/?q=" + "x" * 201)
    assert response.status == 400, response.body
    assert response.json()["error"] == "bad_query"


def test_a_lab_shows_its_steps_but_not_their_scripts(stack: Stack) -> None:
    body = stack.request("GET", "/api/labs/api-basics/?language=ko").json()
    assert body["language"] == "ko"
    assert body["languages"] == ["en", "ko"]
    assert len(body["steps"]) == 3
    first = body["steps"][0]
    assert first == {
        "number": 1,
        "title": "Make one",
        "html": "<p>Do it.</p>",
        "foreground": "cd /root",
        "has_setup": False,
        "has_check": True,
        "has_solve": True,
    }
    assert "touch" not in str(body)


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/labs/no-such-lab/", 404, "unknown_lab"),
        ("/api/labs/api-basics/?language=fr", 404, "unknown_language"),
    ],
)
def test_an_unknown_lab_or_language_is_404(stack: Stack, path: str, status: int, code: str) -> None:
    response = stack.request("GET", path)
    assert response.status == status, response.body
    assert response.json()["error"] == code


# -- sessions with a lab -------------------------------------------------------------------------------
def test_a_session_started_with_a_lab_reports_where_its_reader_is(stack: Stack) -> None:
    session = stack.start_session(lab="api-basics", language="ko")
    assert session["image"] == "busybox"
    assert session["lab"] == {
        "slug": "api-basics",
        "language": "ko",
        "title": "파일 하나씩",
        "steps": 3,
        "current": 1,
        "passed": [],
        "read": [],
        "finished": False,
        "finished_at": None,
    }
    assert stack.request("GET", f"/api/sessions/{session['id']}/", headers=auth(session)).json()["lab"]["current"] == 1
    assert "lab" not in stack.start_session()


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"lab": "no-such-lab"}, 404, "unknown_lab"),
        ({"lab": "api-basics", "language": "fr"}, 404, "unknown_language"),
        ({"lab": 5}, 400, "bad_lab"),
        ({"language": "ko"}, 400, "bad_language"),
        ({"lab": "api-basics", "colour": "red"}, 400, "unknown_field"),
    ],
)
def test_a_bad_lab_in_a_start_is_refused(stack: Stack, body: dict[str, Any], status: int, code: str) -> None:
    response = stack.request("POST", "/api/sessions/", body)
    assert response.status == status and response.json()["error"] == code, response.body


# -- steps ---------------------------------------------------------------------------------------------
def test_step_requests_need_the_sessions_key(stack: Stack) -> None:
    session = lab_session(stack)
    for headers in ({}, {"Authorization": "Session wrong"}):
        response = stack.request("POST", f"/api/sessions/{session['id']}/lab/steps/1/check/", headers=headers)
        assert response.status == 403, response.body
        assert response.json()["error"] == "forbidden"
    response = stack.request("POST", f"/api/sessions/{'0' * 32}/lab/steps/1/check/", headers=auth(session))
    assert response.status == 404, response.body


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("steps/9/check/", None, 404, "unknown_step"),
        ("steps/0/open/", None, 404, "unknown_step"),
        ("steps/1/check/", {"x": 1}, 400, "unknown_field"),
        ("skip/", {"to": 0}, 400, "bad_step"),
        ("skip/", {"to": "2"}, 400, "bad_step"),
        ("skip/", None, 400, "bad_step"),
        ("skip/", [], 400, "bad_json"),
    ],
)
def test_bad_step_requests_get_a_clear_4xx(stack: Stack, path: str, body: Any, status: int, code: str) -> None:
    session = lab_session(stack)
    response = post(stack, session, path, body)
    assert response.status == status and response.json()["error"] == code, response.body


def test_a_session_without_a_lab_has_no_steps(stack: Stack) -> None:
    session = stack.start_session()
    response = post(stack, session, "steps/1/check/")
    assert response.status == 404, response.body
    assert response.json()["error"] == "no_lab"


def test_a_get_on_a_step_is_405(stack: Stack) -> None:
    session = lab_session(stack)
    response = stack.request("GET", f"/api/sessions/{session['id']}/lab/steps/1/check/", headers=auth(session))
    assert response.status == 405, response.body
    assert response.headers["Allow"] == "POST"


async def test_a_failing_check_gives_its_hint_and_passes_once_the_reader_did_the_step(stack: Stack) -> None:
    session = lab_session(stack)
    opened = post(stack, session, "steps/1/open/").json()
    assert opened["foreground"] == "cd /root"
    assert opened["setup"] is None
    failed = post(stack, session, "steps/1/check/").json()
    assert not failed["passed"]
    assert failed["output"] == "No /root/one yet: run touch /root/one\n"
    assert failed["message"].startswith("Not yet")
    assert failed["lab"]["passed"] == []
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    await terminal.run("touch /root/one")
    await terminal.close()
    passed = post(stack, session, "steps/1/check/").json()
    assert passed["passed"]
    assert passed["lab"]["passed"] == [1]
    assert not passed["lab"]["finished"]


def test_a_step_without_a_check_counts_as_read_not_as_checked(stack: Stack) -> None:
    session = lab_session(stack, "api-limits")
    read = post(stack, session, "steps/3/check/").json()
    assert (read["passed"], read["read"], read["message"]) == (
        True,
        True,
        "This step has nothing to check: it counts as read.",
    )
    assert (read["lab"]["passed"], read["lab"]["read"]) == ([3], [3])
    checked = post(stack, session, "steps/4/check/").json()
    assert (checked["passed"], checked["read"], checked["lab"]["passed"], checked["lab"]["read"]) == (
        True,
        False,
        [3, 4],
        [3],
    )


def test_opening_a_step_runs_its_setup_in_the_sandbox(stack: Stack) -> None:
    session = lab_session(stack)
    opened = post(stack, session, "steps/2/open/").json()
    assert opened["setup"]["ok"]
    assert opened["lab"]["current"] == 2
    assert not post(stack, session, "steps/3/check/").json()["passed"]  # /root/one and two are missing


def test_skip_does_the_earlier_steps_and_the_next_check_passes_as_for_a_reader_who_did_them(stack: Stack) -> None:
    session = lab_session(stack)
    assert not post(stack, session, "steps/3/check/").json()["passed"]
    skipped = post(stack, session, "skip/", {"to": 3}).json()
    assert skipped["solved"] == [1, 2]
    assert skipped["lab"]["current"] == 3
    assert skipped["lab"]["passed"] == [1, 2]
    checked = post(stack, session, "steps/3/check/").json()
    assert checked["passed"]
    assert checked["lab"]["finished"]
    assert checked["lab"]["passed"] == [1, 2, 3]


def test_skip_stops_at_a_failing_solve_and_says_which(stack: Stack) -> None:
    session = lab_session(stack, "api-limits")
    response = post(stack, session, "skip/", {"to": 4})
    body = response.json()
    assert response.status == 409, response.body
    assert body["error"] == "solve_failed"
    assert body["step"] == 3
    assert "Step 3's solve script failed" in body["message"]
    assert body["output"] == "cannot\n"
    assert body["lab"]["passed"] == [1, 2]
    assert body["lab"]["current"] == 3


def test_a_check_that_loops_forever_is_stopped_and_other_requests_are_answered_meanwhile(stack: Stack) -> None:
    session = lab_session(stack, "api-limits")
    replies: list[Response] = []
    checking = threading.Thread(target=lambda: replies.append(post(stack, session, "steps/1/check/")))
    started = time.monotonic()
    checking.start()
    time.sleep(1)  # let the check start spinning; nothing outside shows that it has
    for _ in range(5):  # the page and the API stay responsive while the check spins
        asked = time.monotonic()
        assert stack.request("GET", "/api/labs/").status == 200
        assert stack.request("GET", f"/api/sessions/{session['id']}/", headers=auth(session)).status == 200
        assert time.monotonic() - asked < 2
    checking.join(30)
    body = replies[0].json()
    assert replies[0].status == 200
    assert body["timed_out"]
    assert not body["passed"]
    assert body["code"] is None
    assert body["output"] == "looping\n"
    assert "did not finish within 10 seconds" in body["message"]
    assert 9 < time.monotonic() - started < 25


def test_a_check_that_prints_100_mb_is_cut_at_the_output_limit(stack: Stack) -> None:
    session = lab_session(stack, "api-limits")
    started = time.monotonic()
    body = post(stack, session, "steps/2/check/").json()
    assert body["truncated"]
    assert not body["passed"]
    assert body["output"] == "x" * 65536
    assert "printed more than 64 KiB" in body["message"]
    assert time.monotonic() - started < 10


async def test_checks_of_two_sessions_run_side_by_side(stack: Stack) -> None:
    first, second = lab_session(stack, "api-limits"), lab_session(stack)
    started = time.monotonic()
    spinning = asyncio.create_task(asyncio.to_thread(post, stack, first, "steps/1/check/"))
    await asyncio.sleep(0.5)  # let the first check start spinning; nothing outside shows that it has
    quick_reply = await asyncio.to_thread(post, stack, second, "steps/1/check/")
    assert time.monotonic() - started < 5
    assert quick_reply.status == 200, quick_reply.body
    assert (await spinning).json()["timed_out"]


def test_the_openapi_document_describes_the_lab_routes(stack: Stack) -> None:
    document = stack.request("GET", "/api/schema/").json()
    assert {
        "/api/labs/",
        "/api/labs/{slug}/",
        "/api/sessions/{session_id}/lab/steps/{number}/open/",
        "/api/sessions/{session_id}/lab/steps/{number}/check/",
        "/api/sessions/{session_id}/lab/skip/",
    } <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert schemas["Session"]["properties"]["lab"] == {"$ref": "#/components/schemas/LabProgress"}
    assert set(schemas["LabCheck"]["required"]) <= set(schemas["LabCheck"]["properties"])


def test_a_check_runs_in_the_oldest_kept_node_once_node1_is_removed(stack: Stack) -> None:
    session = lab_session(stack)
    nodes = f"/api/sessions/{session['id']}/instances/"
    assert stack.request("POST", nodes, {}, headers=auth(session)).status == 201
    eventually(
        lambda: [
            n["name"]
            for n in stack.request("GET", nodes, headers=auth(session)).json()["instances"]
            if n["state"] == "running"
        ],
        "node2 running",
        60,
        until=lambda names: "node2" in names,
    )
    assert stack.request("DELETE", f"{nodes}node1/", headers=auth(session)).status == 204
    checked = eventually(
        lambda: post(stack, session, "steps/1/check/"),
        "a check in node2",
        60,
        until=lambda r: r.status == 200,
    )
    assert checked.json()["output"] == "No /root/one yet: run touch /root/one\n"
