"""An instructor watching a learner's terminal in Chromium and taking it over (issue #18,
acceptance 1): the instructor sees what the learner types, their own typing is refused until they
take over, and once they do the learner's page shows the banner and their command runs in the
learner's shell; giving back removes the banner (docs/workshops.md, "Watching and taking over")."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser

from tests.e2e.browsing import VIEWPORT, run, wait_for_line
from tests.e2e.classroom import learner_page, sign_in, take_over, watched_screen
from tests.stack import Stack
from tests.waiting import eventually
from tests.workshopkit import make_workshop

pytestmark = pytest.mark.e2e

LEARNER_PK = """
from playground.workshops.models import Learner
print(Learner.objects.get(name="{name}").pk)
"""


def test_an_instructor_watches_a_learner_read_only_then_takes_over_and_the_learner_is_told(
    browser: Browser, stack: Stack
) -> None:
    mark = uuid.uuid4().hex[:8]
    workshop_id, code = make_workshop(stack, f"alice-{mark}", f"pw-{mark}", "Class", 3)
    learner, page, _ = learner_page(browser, stack, code, f"Min {mark}")
    learner_pk = stack.manage("shell", "-c", LEARNER_PK.format(name=f"Min {mark}")).split()[-1]
    teacher = browser.new_context(viewport=VIEWPORT)
    try:
        desk = teacher.new_page()
        desk.goto(f"{stack.base_url}/workshops/{workshop_id}/learners/{learner_pk}/watch/")
        sign_in(desk, f"alice-{mark}", f"pw-{mark}")
        desk.wait_for_selector("#watch-toggle:not([disabled])")
        assert desk.locator("#watch-mode").inner_text() == "Read-only"

        run(page, f"echo seen-{mark}")
        eventually(
            lambda: watched_screen(desk),
            "the learner's command on the watch page",
            15,
            until=lambda s: f"seen-{mark}" in s,
        )

        run(desk, f"echo refused-{mark}", "#watch-terminal")

        assert f"alice-{mark} is typing in your terminal" in take_over(desk, page)
        run(desk, f"echo taken-{mark}", "#watch-terminal")
        learners_screen = "\n".join(wait_for_line(page, rf"taken-{mark}"))
        assert f"refused-{mark}" not in learners_screen, "what the instructor typed read-only reached the shell"

        desk.click("#watch-toggle")
        desk.wait_for_selector("#watch-mode[data-mode=read-only]")
        page.wait_for_selector("#takeover-banner", state="hidden")
        assert re.search(rf"taken-{mark}", watched_screen(desk))
    finally:
        teacher.close()
        learner.close()
