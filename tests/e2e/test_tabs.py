"""Terminal tabs in a real Chromium: "+" opens another shell of the same sandbox, each tab keeps
its screen, a reload restores the tabs, "×" (or Delete on a focused tab) closes one."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.e2e.browsing import end_from_page, screen, start_from_landing, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

ACTIVE_TAB = "() => document.querySelector('[role=tab][aria-selected=true]').dataset.terminal"
LISTED = """async () => {
  const id = window.playground.sessionId;
  const reply = await fetch(`/api/sessions/${id}/instances/node1/terminals/`, {credentials: 'same-origin'});
  return (await reply.json()).terminals.map((t) => t.id);
}"""


def type_line(page: Page, text: str) -> None:
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def shown(page: Page) -> str:
    return "\n".join(screen(page))


FONT_SIZES = "() => [0, 1].map((n) => window.playground.tabs.term(n)?.options.fontSize ?? null)"


def test_a_visitor_opens_a_tab_types_in_it_switches_back_and_closes_it(page: Page, stack: Stack) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    start_from_landing(page, stack)
    page.click("#terminal")
    type_line(page, "echo first-$$")
    wait_for_line(page, "first-1")

    page.click("#tab-add")
    page.wait_for_function(f"() => ({ACTIVE_TAB})() === '1'")
    wait_for_line(page, r".*root@node1.*#")
    type_line(page, "echo tab-$$; stty size")  # the new tab has the keyboard focus
    tab_line = next(line.strip() for line in wait_for_line(page, r"tab-\d+") if re.fullmatch(r"tab-\d+", line.strip()))
    assert tab_line != "tab-1", "the tab runs the first shell"
    cols, rows = page.evaluate("() => [window.playground.term.cols, window.playground.term.rows]")
    wait_for_line(page, f"{rows} {cols}")  # the visible tab is fitted and its size reaches its shell
    assert "first-1" not in shown(page)

    page.click("#tab-0")
    assert page.evaluate(ACTIVE_TAB) == "0"
    wait_for_line(page, "first-1")  # the first tab kept its screen
    assert tab_line not in shown(page)
    page.click("#tab-1")
    wait_for_line(page, tab_line)
    size = page.evaluate(FONT_SIZES)[0]
    page.click("#font-bigger")  # the visitor's settings apply to every tab
    page.wait_for_function(f"() => ({FONT_SIZES})().every((s) => s > {size})")

    page.reload()
    page.wait_for_selector("#tab-1")
    page.wait_for_function(f"() => ({ACTIVE_TAB})() === '1'")  # the tab shown before the reload
    wait_for_line(page, tab_line)  # its screen, replayed
    assert page.evaluate(LISTED) == [0, 1]

    page.click("#tab-1 + .tab-close")
    page.wait_for_selector("#tab-1", state="detached")
    assert page.evaluate(ACTIVE_TAB) == "0"
    wait_for_line(page, "first-1")
    assert page.evaluate(LISTED) == [0]
    page.click("#font-smaller")  # with a closed tab's terminal gone
    page.wait_for_function(f"() => ({FONT_SIZES})()[0] === {size}")

    page.focus("#tab-add")  # the keyboard alone: Enter on "+", arrows between tabs, Delete closes
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => ({ACTIVE_TAB})() === '2'")
    page.focus("#tab-2")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(ACTIVE_TAB) == "0"
    page.focus("#tab-2")
    page.keyboard.press("Delete")
    page.wait_for_selector("#tab-2", state="detached")
    assert page.evaluate(LISTED) == [0]

    end_from_page(page)
    page.wait_for_selector("#overlay", state="visible")
    assert page.is_disabled("#tab-add")
    assert not errors, errors
