"""The instructor's live dashboard and the help queue in Chromium (issue #18): a learner who joins is
on the open dashboard within a second, their raised hand (with its sentence) is in the queue, and
Resolve empties it and brings the learner's hand down on their page; the rows filter."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.browsing import VIEWPORT
from tests.e2e.classroom import join, raise_hand, sign_in
from tests.stack import Stack
from tests.workshopkit import make_workshop

pytestmark = pytest.mark.e2e

LIVE_MS = 1000  # the acceptance's bound on a row's move


def instructor_page(browser: Browser, stack: Stack, mark: str) -> tuple[BrowserContext, Page]:
    """Alice (the owner make_workshop made) signed in, on her list of workshops."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{stack.base_url}/workshops/")
    sign_in(page, f"alice-{mark}", f"pw-{mark}")
    page.wait_for_url(re.compile(r"/workshops/$"))
    return context, page


def test_the_dashboard_shows_a_joining_learner_live_and_their_raised_hand_until_it_is_resolved(
    browser: Browser, stack: Stack
) -> None:
    mark = uuid.uuid4().hex[:8]
    workshop_id, code = make_workshop(stack, f"alice-{mark}", f"pw-{mark}", "Class", 3)
    teacher, desk = instructor_page(browser, stack, mark)
    learners = []
    try:
        desk.click(f"a[href='/workshops/{workshop_id}/']")
        desk.wait_for_url(re.compile(rf"/workshops/{workshop_id}/$"))
        desk.wait_for_function("() => document.getElementById('dashboard-status').textContent.startsWith('Live')")
        assert desk.locator("#learners-empty").is_visible()

        context = browser.new_context(viewport=VIEWPORT)
        learners.append(context)
        page = context.new_page()
        join(page, stack, code, f"Min {mark}")
        page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
        joined = time.monotonic()
        desk.wait_for_selector(f"#learner-rows tr:has-text('Min {mark}')", timeout=LIVE_MS)
        assert time.monotonic() - joined < LIVE_MS / 1000
        row = desk.locator("#learner-rows tr").first.inner_text()
        assert "free sandbox" in row, row

        page.click("dialog.workshop-pin button")
        page.wait_for_selector("#hand-raise")
        assert page.locator("#hand-raise").inner_text() == "Raise hand"
        raise_hand(page, "docker says permission denied")
        desk.wait_for_selector("#help-queue li", timeout=LIVE_MS)
        entry = desk.locator("#help-queue li").inner_text()
        assert f"Min {mark}" in entry and "docker says permission denied" in entry, entry
        assert "hand raised" in desk.locator("#learner-rows tr").first.inner_text()

        desk.check("#filter-stuck")
        assert desk.locator("#learner-rows tr").count() == 0  # nobody is stuck
        desk.uncheck("#filter-stuck")
        desk.check("#filter-hand")
        assert desk.locator("#learner-rows tr").count() == 1
        desk.fill("#filter-name", "nobody")
        assert desk.locator("#learner-rows tr").count() == 0
        desk.fill("#filter-name", "")
        desk.uncheck("#filter-hand")

        desk.click("#help-queue li button")
        desk.wait_for_selector("#help-queue li", state="detached", timeout=LIVE_MS)
        assert desk.locator("#help-empty").is_visible()
        assert "hand raised" not in desk.locator("#learner-rows tr").first.inner_text()
        page.wait_for_selector("#hand-raise[aria-pressed=false]", timeout=LIVE_MS)  # the hand event, no reload
        page.reload()
        page.wait_for_selector("#hand-raise[aria-pressed=false]")
    finally:
        teacher.close()
        for context in learners:
            context.close()
