"""What the browser tests share: launching Debian's Chromium, reading the terminal's screen
through ``window.playground.term``, and starting a session from the landing page."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

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
VIEWPORT = {"width": 1280, "height": 760}

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


def run(page: Page, command: str) -> None:
    """Type ``command`` into the terminal and press Enter."""
    page.click("#terminal")
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def end_from_page(page: Page) -> None:
    """End the session from its page: End session, then the confirmation's End session."""
    page.click("#end-session")
    page.click("#confirm-yes")
