"""The instructor's actions from the dashboard's panel, as the learners' pages show them (issue #18,
acceptance 1's broadcast): a broadcast appears on every learner's page, and on a page opened after
it; a reset learner's page reloads onto a fresh sandbox of the same name, its terminal working and
its files gone."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.browsing import VIEWPORT, run, wait_for_line
from tests.e2e.test_workshop_rejoin import join, own_stack  # noqa: F401 (a fixture)
from tests.stack import Stack
from tests.workshopkit import make_workshop

pytestmark = pytest.mark.e2e


def learner_page(browser: Browser, stack: Stack, code: str, name: str) -> tuple[BrowserContext, Page, str]:
    """A learner who joined ``code`` as ``name`` in a browser of their own, their shell ready: the
    context, the page and the PIN they were shown."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    join(page, stack, code, name)
    page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
    pin = re.search(r"\b(\d{4})\b", page.locator("dialog.workshop-pin p").inner_text())
    assert pin
    page.click("dialog.workshop-pin button")
    page.wait_for_selector("#conn-state[data-state=open]")
    return context, page, pin.group(1)


def dashboard(browser: Browser, stack: Stack, mark: str, workshop_id: str) -> tuple[BrowserContext, Page]:
    """The instructor signed in on the workshop's dashboard, its learners listed; its confirmations accepted."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{stack.base_url}/workshops/{workshop_id}/")
    page.fill("input[name=username]", f"alice-{mark}")
    page.fill("input[name=password]", f"pw-{mark}")
    page.click("button[type=submit]")
    page.wait_for_selector("#action-learner option", state="attached")
    return context, page


def said(page: Page, sentence: str) -> None:
    """Wait until the actions panel's status line says ``sentence``."""
    page.wait_for_function("(s) => document.getElementById('actions-status').textContent.includes(s)", arg=sentence)


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
        desk.fill("#broadcast-message", f"Break until 15:00 {mark}")
        desk.click(".class-actions button >> nth=0")
        said(desk, "The message was sent to 2 running sessions.")
        for _, page, _ in learners:
            page.wait_for_selector("#broadcast:not([hidden])")
            assert f"Break until 15:00 {mark}" in page.locator("#broadcast").inner_text()
        page = learners[0][1]
        page.click("#broadcast .banner-close")
        assert page.locator("#broadcast").is_hidden()

        later = browser.new_context(viewport=VIEWPORT)  # Jun again from another browser, after it was sent
        try:
            again = later.new_page()
            join(again, stack, code, f"Jun {mark}", learners[1][2])
            again.wait_for_selector("#broadcast:not([hidden])")
            assert f"Break until 15:00 {mark}" in again.locator("#broadcast").inner_text()
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
