"""The instructor's actions from the dashboard's panel, as the learners' pages show them (issue #18,
acceptance 1's broadcast): a broadcast appears on every learner's page, and on a page opened after
it; a reset learner's page reloads onto a fresh sandbox of the same name, its terminal working and
its files gone."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser

from tests.e2e.browsing import VIEWPORT, run, wait_for_line
from tests.e2e.classroom import broadcast, dashboard, join, learner_page, said, shows_broadcast
from tests.e2e.test_workshop_rejoin import own_stack  # noqa: F401 (a fixture)
from tests.stack import Stack
from tests.workshopkit import make_workshop

pytestmark = pytest.mark.e2e


def test_a_broadcast_reaches_every_learners_page_and_a_reset_gives_a_fresh_sandbox(
    browser: Browser,
    own_stack: Stack,  # noqa: F811
) -> None:
    stack = own_stack
    mark = uuid.uuid4().hex[:8]
    workshop_id, code = make_workshop(stack, f"alice-{mark}", f"pw-{mark}", "Class", 3)
    learners = [learner_page(browser, stack, code, f"{name} {mark}") for name in ("Min", "Jun")]
    teacher, desk = dashboard(browser, stack, mark, workshop_id)
    try:
        broadcast(desk, f"Break until 15:00 {mark}", 2)
        for _, page, _ in learners:
            assert shows_broadcast(page, f"Break until 15:00 {mark}")
        page = learners[0][1]
        page.click("#broadcast .banner-close")
        assert page.locator("#broadcast").is_hidden()

        later = browser.new_context(viewport=VIEWPORT)  # Jun again from another browser, after it was sent
        try:
            again = later.new_page()
            join(again, stack, code, f"Jun {mark}", learners[1][2])
            assert shows_broadcast(again, f"Break until 15:00 {mark}")
        finally:
            later.close()

        run(page, f"touch /root/{mark} && ls /root")
        wait_for_line(page, mark)
        page.evaluate("() => { window.beforeReset = true; }")
        desk.select_option("#action-learner", label=f"Min {mark}")
        desk.click(".learner-actions button >> text=Reset")
        said(desk, f"Min {mark} has new sandboxes")
        page.wait_for_function("() => !window.beforeReset && window.playground && window.playground.term")  # reloaded
        page.wait_for_selector("#conn-state[data-state=open]", timeout=30000)
        run(page, f"echo fresh $(hostname) $(ls /root | grep -c {mark})")
        wait_for_line(page, "fresh node1 0")  # the same node's name, without the file made before
    finally:
        teacher.close()
        for context, _, _ in learners:
            context.close()
