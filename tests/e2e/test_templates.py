"""Session templates in a real Chromium (docs/templates.md, "On the page"): the landing page offers
a template beside the images, chosen with the keyboard; its Start opens node1's terminal in place
with every node in the node panel, and a line above the terminals follows the setup to its end;
a setup that fails says why in a sentence and shows the scripts' log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.e2e.browsing import stack_with_templates, wait_for_line
from tests.e2e.test_newcomer import resize
from tests.stack import Stack
from tests.waiting import eventually

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.e2e, pytest.mark.alongside]

PAIR = """
title = "A busybox pair"
description = "Two busybox nodes: the second learns the first one's address."
image = "busybox"

[[nodes]]
role = "first"
setup = 'echo "@set FIRST=$ADDRESS"; echo "$NODE is ready"'

[[nodes]]
role = "second"
setup = 'echo "$FIRST" > /root/first; echo "$NODE is ready"'
"""
BROKEN = """
title = "A pair that breaks"
image = "busybox"

[[nodes]]
role = "first"

[[nodes]]
role = "second"
setup = 'echo "cannot go on here"; exit 3'
"""
SESSION_URL = re.compile(r".*/s/[0-9a-f-]{36}/$")
# Where the setup line is, against the terminals' area: above it, never over it.
BOXES = """() => { const box = (s) => document.querySelector(s).getBoundingClientRect();
  const line = box('#setup-status'), area = box('.term-area');
  return {lineBottom: line.bottom, areaTop: area.top, lineHeight: line.height,
    height: document.documentElement.scrollHeight, window: innerHeight}; }"""


@pytest.fixture(scope="module")
def templates_stack() -> Iterator[Stack]:
    """A stack whose templates directory (readable by the web user) holds ``pair`` and ``broken``."""
    with stack_with_templates({"pair": PAIR, "broken": BROKEN}) as stack:
        yield stack


def assert_line_above_terminal(page: Page, where: str) -> None:
    """The setup line is above the terminals' area, and the page no taller than the window (once
    the terminal has refitted to the room the line leaves it)."""

    def fits(boxes: dict[str, float]) -> bool:
        return boxes["lineBottom"] <= boxes["areaTop"] and boxes["height"] <= boxes["window"]

    eventually(lambda: page.evaluate(BOXES), f"the setup line above the terminal at {where}", 5, 0.2, until=fits)


def start_template(page: Page, stack: Stack, name: str) -> None:
    """Choose template ``name`` on the landing page with the keyboard and Start it: in place, at
    node1's prompt."""
    page.goto(stack.base_url + "/", wait_until="networkidle")
    page.focus("#choice-node")
    page.keyboard.press("ArrowDown")  # the radio group: the template's side
    assert page.is_checked("#choice-template")
    page.keyboard.press("Tab")  # to the template's menu
    assert page.evaluate("() => document.activeElement.id") == "template"
    page.select_option("#template", name)
    assert page.is_visible(f".template-about[data-template='{name}']")
    page.focus("#start")
    page.keyboard.press("Enter")
    page.wait_for_url(SESSION_URL)
    wait_for_line(page, r".*root@node1.*#")


def test_a_template_picked_on_the_landing_page_starts_both_nodes_and_its_setup_line_reaches_done(
    page: Page, templates_stack: Stack
) -> None:
    page.goto(templates_stack.base_url + "/")
    about = page.inner_text(".template-about[data-template='pair']")
    assert "the second learns the first one's address" in about and "2 nodes" in about, about
    assert "node1 first" in about and "node2 second" in about, about
    start_template(page, templates_stack, "pair")
    for name in ("node1", "node2"):
        page.wait_for_selector(f"#node-list li[data-node='{name}']", state="attached")
    page.wait_for_function("() => document.getElementById('setup-status').dataset.state === 'done'", timeout=30000)
    assert page.inner_text("#setup-text") == "A busybox pair is set up: 2 nodes ready."
    assert page.is_hidden("#setup-progress")
    assert_line_above_terminal(page, "1280x760")
    page.click("#setup-close")  # dismissed: the terminals take its room
    assert page.is_hidden("#setup-status")


def test_a_failed_setup_says_which_node_failed_and_shows_the_scripts_log(page: Page, templates_stack: Stack) -> None:
    start_template(page, templates_stack, "broken")
    page.wait_for_function("() => document.getElementById('setup-status').dataset.state === 'failed'", timeout=30000)
    text = page.inner_text("#setup-text")
    assert text.startswith("The setup of A pair that breaks stopped at step 2 of 2. node2's setup failed"), text
    assert "The nodes keep running" in text, text
    assert page.get_attribute("#setup-status", "role") == "alert"
    for width, height in [(1280, 720), (390, 844)]:
        resize(page, width, height)
        assert_line_above_terminal(page, f"{width}x{height}")
    page.set_viewport_size({"width": 1280, "height": 720})  # (on a phone the open node panel is a menu over it)
    page.click("#setup-log-button")
    page.wait_for_selector("#setup-log-dialog", state="visible")
    assert "== node2 (second)\ncannot go on here" in page.inner_text("#setup-log")
    page.keyboard.press("Escape")  # closed, the focus back on its button
    page.wait_for_selector("#setup-log-dialog", state="detached")
    assert page.evaluate("() => document.activeElement.id") == "setup-log-button"
