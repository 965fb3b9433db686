"""What the workshop browser tests share: an instructor added and signing in, a learner joining in a
browser of their own, the dashboard's rows as they change (each with the browser's time), a raised
hand, the watch page's screen, taking over, and the actions panel's broadcast.

Times are the browser's (``Date.now()``, milliseconds since the epoch): every page of the test's
Chromium reads the same clock, so a learner's page and the instructor's dashboard can be compared."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.browsing import VIEWPORT
from tests.stack import Stack
from tests.waiting import eventually

Row = dict[str, Any]

# When the answer to the join's POST arrived: the end of the redirect that brought the session page.
JOINED_AT = """() => {
  const navigation = performance.getEntriesByType('navigation')[0];
  return performance.timeOrigin + (navigation.redirectEnd || navigation.responseStart);
}"""

# Keep in window.rowsSeen every new look of each learner's row (the cells that move with what they do,
# not the ticking times), with the time the dashboard's DOM first showed it.
RECORD_ROWS = """() => {
  const seen = (window.rowsSeen = []);
  const last = new Map();
  const note = () => {
    const at = Date.now();
    for (const tr of document.querySelectorAll('#learner-rows tr')) {
      const cells = [...tr.cells].map((cell) => cell.textContent);
      const row = { name: cells[0], step: cells[2], passed: cells[3], failed: cells[4], flags: cells[7] };
      const look = JSON.stringify(row);
      if (last.get(row.name) !== look) {
        last.set(row.name, look);
        seen.push({ at, ...row });
      }
    }
  };
  note();
  new MutationObserver(note).observe(document.getElementById('learner-rows'), { childList: true, subtree: true });
}"""


def make_instructor(stack: Stack, user: str, password: str) -> None:
    """A new instructor, as an operator adds one: ``manage.py instructor add`` with the password on
    standard input."""
    stack.manage("instructor", "add", user, "--password-stdin", stdin=password + "\n")


def sign_in(page: Page, user: str, password: str) -> None:
    """On the sign-in page (``/accounts/login/``, or any instructor page that sends there), sign in."""
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def join(page: Page, stack: Stack, code: str, name: str, pin: str = "", typed: bool = False) -> None:
    """Fill in the join page with ``name`` (and ``pin``) and send it: the page of ``code``'s link
    (``/join/<code>``, in lower case), or with ``typed`` the bare ``/join`` with the code typed, as
    read off the projector."""
    page.goto(f"{stack.base_url}/join" if typed else f"{stack.base_url}/join/{code.lower()}")
    if typed:
        page.fill("input[name=code]", code)
    page.fill("input[name=name]", name)
    if pin:
        page.fill("input[name=pin]", pin)
    page.click("button[type=submit]")


def learner_page(
    browser: Browser, stack: Stack, code: str, name: str, typed: bool = False
) -> tuple[BrowserContext, Page, str]:
    """A learner who joined ``code`` as ``name`` (see :func:`join`) in a browser of their own, their
    shell ready: the context, the page and the PIN they were shown."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    join(page, stack, code, name, typed=typed)
    page.wait_for_url(re.compile(r"/s/[0-9a-f-]+/$"))
    pin = re.search(r"\b(\d{4})\b", page.locator("dialog.workshop-pin p").inner_text())
    assert pin
    page.click("dialog.workshop-pin button")
    page.wait_for_selector("#conn-state[data-state=open]")
    return context, page, pin.group(1)


def joined_at(page: Page) -> float:
    """The browser's time when the join of the learner on ``page`` was answered."""
    return float(page.evaluate(JOINED_AT))


def dashboard(browser: Browser, stack: Stack, mark: str, workshop_id: str) -> tuple[BrowserContext, Page]:
    """The instructor signed in on the workshop's dashboard, its learners listed; its confirmations accepted."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{stack.base_url}/workshops/{workshop_id}/")
    sign_in(page, f"alice-{mark}", f"pw-{mark}")
    page.wait_for_selector("#action-learner option", state="attached")
    return context, page


def record_rows(desk: Page) -> None:
    """From now on, note every new look of each row of the dashboard on ``desk`` with its time."""
    desk.evaluate(RECORD_ROWS)


def row_seen(desk: Page, name: str, until: Callable[[Row], object], what: str, timeout: float = 10) -> float:
    """The browser's time when the dashboard first showed ``name``'s row as ``until`` wants it (a row
    is the cells ``name``, ``step``, ``passed``, ``failed`` and ``flags``), waiting for it; ``what``
    names that look. Needs :func:`record_rows` first."""
    rows: list[Row] = eventually(
        lambda: [row for row in desk.evaluate("() => window.rowsSeen") if row["name"] == name and until(row)],
        f"{name}'s row on the dashboard: {what}",
        timeout,
    )
    return float(rows[0]["at"])


def raise_hand(page: Page, sentence: str) -> None:
    """The learner raises their hand from the top bar, saying ``sentence``."""
    page.click("#hand-raise")
    page.fill("#hand-form input", sentence)
    page.click("#hand-form button[type=submit]")
    page.wait_for_selector("#hand-raise[aria-pressed=true]")


def watched_screen(page: Page) -> str:
    """What the watch page's terminal shows (xterm's rows as text)."""
    return page.locator("#watch-terminal .xterm-rows").inner_text()


def take_over(watch: Page, learner: Page) -> str:
    """Press Take over on the watch page; once the learner's page shows its banner, the banner's text."""
    watch.click("#watch-toggle")
    watch.wait_for_selector("#watch-mode[data-mode=typing]")
    learner.wait_for_selector("#takeover-banner:not([hidden])")
    return learner.inner_text("#takeover-banner")


def said(page: Page, sentence: str) -> None:
    """Wait until the actions panel's status line says ``sentence``."""
    page.wait_for_function("(s) => document.getElementById('actions-status').textContent.includes(s)", arg=sentence)


def broadcast(desk: Page, message: str, sessions: int) -> None:
    """Send ``message`` to the class from the dashboard's actions panel; it reaches ``sessions`` sessions."""
    desk.fill("#broadcast-message", message)
    desk.click(".class-actions button >> nth=0")
    said(desk, f"The message was sent to {sessions} running sessions.")


def shows_broadcast(page: Page, message: str) -> bool:
    """Whether the learner's page shows ``message`` in its broadcast banner (waiting for the banner)."""
    page.wait_for_selector("#broadcast:not([hidden])")
    return message in page.locator("#broadcast").inner_text()
