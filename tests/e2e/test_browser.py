"""End to end in a real headless Chromium (Debian's), driven by Playwright, against a real stack."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.stack import REPO, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"

READ_SCREEN = """() => {
  const buffer = window.playground.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; 'make test' installs it (deploy/install-deps.sh test)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    tab = context.new_page()
    yield tab
    context.close()


def screen(page: Page) -> list[str]:
    return page.evaluate(READ_SCREEN)


def wait_for_line(page: Page, pattern: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        lines = screen(page)
        if any(regex.fullmatch(line.strip()) for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; screen: {screen(page)}")


def start_from_landing(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    page.get_by_role("button", name="Start playground").click()
    page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    page.wait_for_function("() => window.playground && window.playground.term")
    wait_for_line(page, r".*root@node1.*#")


def test_a_visitor_clicks_start_and_computes_42(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    page.click("#terminal")
    page.keyboard.type("echo $((6*7))")
    page.keyboard.press("Enter")
    wait_for_line(page, "42")
    assert re.search(r"\d", page.inner_text("#time-left"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "terminal.png"))
    page.click("#end-session")
    page.wait_for_selector("#overlay", state="visible")
    assert "ended" in page.inner_text("#overlay").lower()


def test_the_terminal_follows_the_browser_window_size(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    page.set_viewport_size({"width": 900, "height": 500})
    time.sleep(0.5)
    cols, rows = page.evaluate("() => [window.playground.term.cols, window.playground.term.rows]")
    page.click("#terminal")
    page.keyboard.type("stty size")
    page.keyboard.press("Enter")
    wait_for_line(page, f"{rows} {cols}")
    page.click("#end-session")
    page.wait_for_selector("#overlay", state="visible")
