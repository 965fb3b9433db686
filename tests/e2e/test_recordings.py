"""A workshop learner replays their terminal's recording in the page (issue #18, acceptance 4): the
session page's "Recordings" link opens the recordings page, whose asciinema-player plays what they
typed, beside a download link of the .cast."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.browsing import VIEWPORT, run, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

MAKE_WORKSHOP = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from playground.workshops.models import Workshop
owner = User.objects.create_user("teacher-{mark}", password="pw-{mark}", is_staff=True)
now = timezone.now()
w = Workshop.objects.create(owner=owner, title="Replay", image="busybox", capacity=3, starts_at=now,
                            ends_at=now + timedelta(hours=1))
print(w.join_code)
"""


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    with Stack.running() as running:
        yield running


def test_a_learner_replays_their_terminal_in_the_page_from_the_recordings_link(
    browser: Browser, own_stack: Stack
) -> None:
    stack, mark = own_stack, uuid.uuid4().hex[:8]
    code = stack.manage("shell", "-c", MAKE_WORKSHOP.format(mark=mark)).split()[-1]
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/join/{code}")
        page.fill("input[name=name]", f"Min {mark}")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
        page.click("dialog.workshop-pin button")
        page.wait_for_function("() => window.playground && window.playground.term")
        run(page, "echo replayed-$((6*7))")
        wait_for_line(page, "replayed-42")
        page.wait_for_timeout(1500)  # the recorder writes within a second
        with context.expect_page() as opened:
            page.click("#recordings-link")
        replay = opened.value
        replay.wait_for_selector(".recording-player .ap-player")
        download = replay.locator("a[download]").first
        assert (download.get_attribute("href") or "").endswith("/recordings/node1-0.cast")
        replay.click(".recording-player .ap-overlay-start")
        replay.wait_for_function(
            "() => [...document.querySelectorAll('.recording-player .ap-term-text, .recording-player .ap-line')]"
            ".some((el) => el.textContent.includes('replayed-42'))",
            timeout=30_000,
        )
        assert replay.locator(".ap-overlay-error").count() == 0
    finally:
        context.close()
