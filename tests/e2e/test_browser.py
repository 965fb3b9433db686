"""End to end in a real headless Chromium (Debian's), driven by Playwright, against a real stack."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from playground.sandboxes import events
from tests.e2e.browsing import ARTIFACTS, VIEWPORT, end_from_page, run, start_from_landing, wait_for_line
from tests.stack import Stack
from tests.visitors import no_live_sessions, start
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def test_a_visitor_clicks_start_and_computes_42(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    page.click("#terminal")
    page.keyboard.type("echo $((6*7))")
    page.keyboard.press("Enter")
    wait_for_line(page, "42")
    assert re.search(r"\d", page.inner_text("#time-left"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "terminal.png"))
    page.click("#end-session")  # asks first; "Keep it" keeps the session
    assert page.inner_text("#confirm-title") == "End this session?"
    page.click("#confirm-no")
    page.wait_for_selector("#confirm-dialog", state="detached")
    run(page, "echo still $((6*7))")
    wait_for_line(page, "still 42")
    assert page.is_hidden("#overlay")
    end_from_page(page)
    page.wait_for_selector("#overlay", state="visible")
    assert "ended" in page.inner_text("#overlay").lower()


def test_the_terminal_follows_the_browser_window_size(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    size = "() => [window.playground.term.cols, window.playground.term.rows]"
    before = page.evaluate(size)
    page.set_viewport_size({"width": 900, "height": 500})
    cols, rows = eventually(
        lambda: page.evaluate(size), f"the terminal resized from {before}", until=lambda now: now != before
    )
    page.click("#terminal")
    page.keyboard.type("stty size")
    page.keyboard.press("Enter")
    wait_for_line(page, f"{rows} {cols}")
    end_from_page(page)
    page.wait_for_selector("#overlay", state="visible")


def test_extend_adds_an_hour_and_the_countdown_follows(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    page.wait_for_function("() => /^3:59:\\d\\d$/.test(document.getElementById('time-left').textContent)")
    page.click("#extend-session")
    # The toast lives 5 s; wait for it first, as a slow machine may take longer to see the countdown's next tick.
    page.wait_for_selector("#toasts .toast:has-text('Time added')")
    page.wait_for_function("() => /^4:59:\\d\\d$/.test(document.getElementById('time-left').textContent)")
    end_from_page(page)
    page.wait_for_selector("#overlay", state="visible")


def test_the_page_warns_before_the_end_then_says_the_time_ran_out_and_offers_a_new_session(
    page: Page, lifecycle_stack: Stack
) -> None:
    page.goto(lifecycle_stack.base_url + "/")
    page.get_by_role("button", name="Start playground").click()  # the session lives 5 s
    page.wait_for_selector("#banner", state="visible", timeout=10000)
    assert "This session ends in" in page.inner_text("#banner-text")
    page.wait_for_selector("#overlay", state="visible", timeout=20000)
    assert page.inner_text("#overlay-title") == "Session expired"
    assert page.inner_text("#overlay-message") == events.end_message("expired")  # the server's sentence
    assert page.get_attribute("body", "data-ended-reason") == "expired"
    assert page.is_hidden("#banner")
    page.click("#new-session")
    page.wait_for_url(lifecycle_stack.base_url + "/")


def test_a_visitor_over_the_limit_reads_why_and_the_page_retries_by_itself(browser, lifecycle_stack: Stack) -> None:
    stack = lifecycle_stack
    no_live_sessions(stack)
    who = {"X-Forwarded-For": "192.0.2.77"}
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers=who)
    try:
        page = context.new_page()
        running = [start(stack, who, extensions=1) for _ in range(2)]  # the most one visitor may run
        page.goto(stack.base_url + "/")
        page.get_by_role("button", name="Start playground").click()
        page.wait_for_selector("#retry-countdown", state="visible")
        assert "You already have 2 playgrounds running" in page.inner_text("#error")
        assert "Trying again automatically" in page.inner_text("#retry-countdown")
        stack.end_session(running[0])
        page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"), timeout=20000)  # Retry-After is 10 s
    finally:
        context.close()


SESSION_STATE = """async () => {
  const reply = await fetch(`/api/sessions/${window.playground.sessionId}/`);
  return (await reply.json()).state;
}"""


def test_a_reloaded_page_of_an_ended_session_says_why_in_the_servers_words(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    end_from_page(page)
    page.wait_for_selector("#overlay", state="visible")
    # No longer "ending" (whose page still connects, and hears why from the terminal): the API alone says why.
    eventually(lambda: page.evaluate(SESSION_STATE) == "ended", "the session's end", timeout=30)
    page.reload()
    page.wait_for_selector("#overlay", state="visible")
    assert page.inner_text("#overlay-title") == "Session ended"
    assert page.inner_text("#overlay-message") == events.end_message("deleted")
    assert page.get_attribute("body", "data-ended-reason") == "deleted"


def test_a_shell_that_exits_says_so_in_the_servers_words_and_a_new_session_ends_the_old_one(
    page: Page, stack: Stack
) -> None:
    start_from_landing(page, stack)
    run(page, "exit")
    page.wait_for_selector("#overlay", state="visible")
    assert page.inner_text("#overlay-title") == "The shell exited"
    message = page.inner_text("#overlay-message")
    # The consumer's sentence, which says what to do; the page's own fallback is only "The shell exited."
    assert message.startswith("The shell exited.") and message != "The shell exited.", message
    assert page.is_enabled("#end-session")  # the session itself still runs
    page.click("#new-session")
    page.wait_for_url(stack.base_url + "/")
    no_live_sessions(stack)
