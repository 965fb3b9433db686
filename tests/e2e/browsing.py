"""What the browser tests share: launching Debian's Chromium, reading the terminal's screen
through ``window.playground.term``, starting a session from the landing page, and the lab panel's
Check and Next."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.stack import REPO, Stack
from tests.waiting import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT: ViewportSize = {"width": 1280, "height": 760}

READ_SCREEN = """() => {
  const buffer = window.playground.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines;
}"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium, closed afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; 'make test' installs it (deploy/install-deps.sh test)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@contextmanager
def stack_with_templates(templates: dict[str, str]) -> Iterator[Stack]:
    """A started stack whose templates directory (readable by the web user) holds ``templates``
    (each name's TOML), stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="pg-templates-", dir="/tmp") as name:
        directory = Path(name)
        directory.chmod(0o755)
        for template, text in templates.items():
            (directory / f"{template}.toml").write_text(text)
        with Stack.running(PLAYGROUND_TEMPLATES_DIR=str(directory)) as stack:
            yield stack


def screen(page: Page) -> list[str]:
    return page.evaluate(READ_SCREEN)


def wait_for_line(page: Page, pattern: str, timeout: float = 20) -> list[str]:
    """The terminal's screen once a line of it matches ``pattern`` (the whole line, stripped)."""
    regex = re.compile(pattern)
    return eventually(
        lambda: screen(page),
        f"a line matching {pattern!r} on the terminal's screen",
        timeout,
        until=lambda lines: any(regex.fullmatch(line.strip()) for line in lines),
    )


def start_from_landing(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    page.get_by_role("button", name="Start playground").click()
    page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    page.wait_for_function("() => window.playground && window.playground.term")
    wait_for_line(page, r".*root@node1.*#")


def run(page: Page, command: str, terminal: str = "#terminal") -> None:
    """Type ``command`` into the terminal (the element ``terminal``) and press Enter."""
    page.click(terminal)
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def end_from_page(page: Page) -> None:
    """End the session from its page: End session, then the confirmation's End session."""
    page.click("#end-session")
    page.click("#confirm-yes")


def lab_ready(page: Page, timeout: float = 30) -> None:
    """Wait until the lab panel is there and its Check can be pressed (its step open)."""
    page.wait_for_function(
        "() => { const check = document.getElementById('lab-check'); return check && !check.disabled; }",
        timeout=timeout * 1000,
    )


def checked(page: Page, timeout: float = 30) -> tuple[str, float]:
    """Press the lab panel's Check and wait for its result: its state (passed or failed) and the
    browser's time (``Date.now()``) when the page showed it."""
    page.evaluate("() => { document.getElementById('lab-result').dataset.state = ''; }")
    page.click("#lab-check")
    shown = page.wait_for_function(
        """() => {
          const state = document.getElementById('lab-result').dataset.state;
          return ['passed', 'failed'].includes(state) && [state, Date.now()];
        }""",
        timeout=timeout * 1000,
    ).json_value()
    return str(shown[0]), float(shown[1])


def check(page: Page, timeout: float = 30) -> str:
    """Press Check and wait for its result; returns the result's state (passed or failed)."""
    return checked(page, timeout)[0]


def next_step(page: Page) -> float:
    """Press the lab panel's Next and wait for the next step to open: the browser's time when it did."""
    step = int(page.get_attribute("#lab-panel", "data-step") or "0")
    page.click("#lab-next")
    opened = page.wait_for_function(
        "(step) => document.getElementById('lab-panel').dataset.step === String(step) && Date.now()", arg=step + 1
    )
    return float(opened.json_value())
