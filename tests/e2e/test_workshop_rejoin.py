"""A learner of a workshop comes back from another browser (issue #18, acceptance 2 and 3): with the
same code, name and PIN they get the same sandbox and shell (``$$`` unchanged) and the screen
replayed; a wrong PIN gets a sentence, not the session. Ending the workshop leaves nothing on the host."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.browsing import VIEWPORT, run, wait_for_line
from tests.e2e.classroom import join, sign_in
from tests.stack import Stack
from tests.workshopkit import make_workshop

pytestmark = pytest.mark.e2e

SESSION_STATE = """
from playground.sandboxes.models import Session
s = Session.objects.get(pk="{id}")
print(s.state, s.ended_reason)
"""


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack of this module's own: the end of the workshop must leave nothing of it on the host."""
    with Stack.running() as running:
        yield running


def test_a_learner_comes_back_from_a_fresh_browser_to_the_same_shell_and_a_wrong_pin_does_not(
    browser: Browser, own_stack: Stack
) -> None:
    stack = own_stack
    mark = uuid.uuid4().hex[:8]
    workshop_id, code = make_workshop(stack, f"alice-{mark}", f"pw-{mark}", "Rejoin", 3)
    first = browser.new_context(viewport=VIEWPORT)
    page = first.new_page()
    join(page, stack, code, f"Min {mark}")
    page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
    session_path = page.url.removeprefix(stack.base_url)
    shown = page.locator("dialog.workshop-pin p").inner_text()
    pin = re.search(r"\b(\d{4})\b", shown)
    assert pin, shown
    page.click("dialog.workshop-pin button")
    page.wait_for_function("() => window.playground && window.playground.term")
    run(page, f"MARK={mark}; echo $MARK $$")
    wait_for_line(page, f"{mark} 1")  # pid 1: the sandbox's own shell
    first.close()

    second = browser.new_context(viewport=VIEWPORT)
    try:
        page = second.new_page()
        wrong = f"{(int(pin.group(1)) + 1) % 10000:04d}"
        join(page, stack, code, f"min {mark}", wrong)
        page.wait_for_selector("p.form-error")
        assert "does not match" in page.locator("p.form-error").inner_text()
        assert "/join" in page.url

        join(page, stack, code, f"min {mark}", pin.group(1))  # the same name whatever its case
        page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
        assert page.url.removeprefix(stack.base_url) == session_path
        page.wait_for_function("() => window.playground && window.playground.term")
        wait_for_line(page, f"{mark} 1")  # the screen replayed: the line typed in the first browser
        page.wait_for_selector("#conn-state[data-state=open]")
        run(page, "echo again $MARK $$")
        wait_for_line(page, f"again {mark} 1")  # the same shell: its variable, and still pid 1
    finally:
        second.close()

    end_the_workshop_as_its_instructor(browser, stack, mark, workshop_id)
    session_id = session_path.strip("/").split("/")[-1]
    ended = stack.manage("shell", "-c", SESSION_STATE.format(id=session_id)).split()[-2:]
    assert ended == ["ended", "expired"], ended
    stack.assert_clean_host(30)


def end_the_workshop_as_its_instructor(browser: Browser, stack: Stack, mark: str, workshop_id: str) -> None:
    """Sign in as the workshop's instructor and press its "End now"."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/workshops/")
        sign_in(page, f"alice-{mark}", f"pw-{mark}")
        page.click(f"form[action='/workshops/{workshop_id}/end/'] button")
        page.wait_for_selector("p.form-note")
        assert "1" in page.locator("p.form-note").inner_text()  # one learner's session ended
    finally:
        context.close()
