"""Start opens the terminal in place, in a real Chromium: the landing page loads the session page's
code in the background (served to be cached for good), and its Start creates the session and turns
the same document into the session's page at /s/<id>/, which a reload, Back and Resume treat as
the session's own page; a lab's introduction does the same, with the lab's panel. And a session
page that loads while its sandbox is still being created asks for nothing that fails (its tabs are
asked for once the shell has printed)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, Response

from tests.e2e.browsing import run, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

SESSION_URL = re.compile(r".*/s/([0-9a-f-]{36})/$")
PROMPT = r".*root@node1.*#"
CACHED_FOR_GOOD = "max-age=315360000, public, immutable"
SHIPPED_LAB = "containers-from-the-inside"


def start_in_place(page: Page, url: str, start: str = "#start") -> str:
    """Open the page at ``url``, wait until it has loaded the session page's code, click its Start
    button (``start``) and wait for the prompt; the session's id. Asserts that no other page was
    loaded meanwhile."""
    page.goto(url, wait_until="networkidle")
    page.evaluate("() => { window.theLandingDocument = true; }")
    page.click(start)
    page.wait_for_url(SESSION_URL)
    wait_for_line(page, PROMPT)
    assert page.evaluate("() => window.theLandingDocument === true"), "Start loaded another page"
    assert page.evaluate("() => document.body.dataset.page") == "session"
    assert page.title() == "Terminal · Playground"
    match = SESSION_URL.match(page.url)
    assert match is not None
    return match.group(1)


def test_start_opens_the_terminal_in_place_and_a_reload_of_its_address_gives_the_same_shell(
    page: Page, stack: Stack
) -> None:
    session_id = start_in_place(page, stack.base_url + "/")
    assert page.evaluate("() => window.playground.sessionId") == session_id
    run(page, "MARK=started-in-place")
    page.reload()
    wait_for_line(page, PROMPT)
    assert page.evaluate("() => window.theLandingDocument") is None  # a page of its own now
    run(page, "echo mark=$MARK")
    wait_for_line(page, "mark=started-in-place")  # the same shell


def test_back_from_a_terminal_started_in_place_shows_the_landing_page_whose_resume_gives_the_same_shell(
    page: Page, stack: Stack
) -> None:
    session_id = start_in_place(page, stack.base_url + "/")
    run(page, "MARK=before-going-back")
    page.go_back()
    row = f"#my-sessions-list li[data-session-id='{session_id}']"
    page.wait_for_selector(row)
    assert page.url == stack.base_url + "/"
    assert page.evaluate("() => document.body.dataset.page") == "landing"
    page.click(f"{row} .my-session-resume")
    page.wait_for_url(f"{stack.base_url}/s/{session_id}/")
    wait_for_line(page, PROMPT)
    run(page, "echo mark=$MARK")
    wait_for_line(page, "mark=before-going-back")


def test_a_labs_start_opens_its_session_in_place_with_the_labs_panel(page: Page, stack: Stack) -> None:
    start_in_place(page, f"{stack.base_url}/labs/{SHIPPED_LAB}/?language=en", "#lab-start")
    page.wait_for_selector("#lab-panel")
    assert page.evaluate("() => window.playground.session.lab.slug") == SHIPPED_LAB
    assert page.evaluate("() => Object.keys(document.body.dataset).sort()") == ["page", "sessionId"]
    page.wait_for_function("() => !document.getElementById('lab-check').disabled", timeout=30000)


def test_the_landing_page_fetches_the_session_pages_code_before_the_click_cached_for_good(
    page: Page, stack: Stack
) -> None:
    scripts: list[Response] = []
    page.on("response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None)
    page.goto(stack.base_url + "/", wait_until="networkidle")
    chunks = [r for r in scripts if re.search(r"/static/chunks/sessionpage-[A-Z0-9]{8}\.js$", r.url)]
    assert len(chunks) == 1, [r.url for r in scripts]
    assert chunks[0].headers["cache-control"] == CACHED_FOR_GOOD
    entry = next(r for r in scripts if r.url.endswith("/static/playground.js"))
    assert "immutable" not in entry.headers["cache-control"]  # its name stays: a new version must reach the page
    assert int(entry.headers["content-length"]) < 50_000  # the landing page's own code: no xterm.js in it


@contextmanager
def held(stack: Stack, part: str) -> Iterator[None]:
    """``part`` of the stack stopped (SIGSTOP) while inside, then resumed."""
    pid = stack.pid_of(part)
    assert pid is not None, stack.log_tail()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_session_page_loaded_while_its_sandbox_is_created_has_no_failed_request_and_no_console_error(
    page: Page, stack: Stack
) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.request.url}") if r.status >= 400 else None)
    # No sandbox is created while the worker is stopped (its task) and the agent too (the terminal's
    # early create); the start itself may ask the agent, so it comes before the agent stops.
    with held(stack, "worker"):
        session = stack.start_session()
        with held(stack, "agent"):
            page.context.add_cookies(
                [{"name": f"pg_{session['id'].replace('-', '')}", "value": session["key"], "url": stack.base_url}]
            )
            page.goto(f"{stack.base_url}/s/{session['id']}/", wait_until="networkidle")
            page.wait_for_selector("#starting", state="visible")  # the sandbox is not there yet
            assert problems == []  # the tabs were asked for too early: 409 unknown_sandbox
    wait_for_line(page, PROMPT)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => window.playground.tabs.list()") == [0]
    assert problems == []
