"""The page in Korean, end to end: a Chromium whose language is Korean (``locale="ko-KR"``: its
navigator.languages and Accept-Language) gets the landing page and the session page in Korean, and
Hangul printed in the terminal takes two cells per character in xterm's buffer; the switch back
to English is remembered."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser

from playground import i18n
from tests.e2e.browsing import ARTIFACTS, VIEWPORT, end_from_page, run, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

# The cells of the line that reads "한글", each [character, width]: a wide character, then its spacer.
HANGUL_CELLS = """() => {
  const buffer = window.playground.term.buffer.active;
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    if (line.translateToString(true).trim() !== '한글') continue;
    const cells = [];
    for (let x = 0; x < 4; x++) { const cell = line.getCell(x); cells.push([cell.getChars(), cell.getWidth()]); }
    return cells;
  }
  return null;
}"""


def test_a_korean_browser_gets_the_pages_in_korean_and_hangul_takes_two_cells(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR")
    try:
        page = context.new_page()
        page.goto(stack.base_url + "/")
        assert page.get_attribute("html", "lang") == "ko"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "landing-ko.png"))
        page.get_by_role("button", name=i18n.translate("ko", "landing.start")).click()
        page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
        page.wait_for_function("() => window.playground && window.playground.term")
        wait_for_line(page, r".*root@node1.*#")
        assert page.inner_text("#end-session") == i18n.translate("ko", "topbar.end")
        assert page.inner_text(".nodes-title") == i18n.translate("ko", "topbar.nodes")
        assert page.inner_text("#conn-state") == i18n.translate("ko", "conn.open")
        run(page, r"printf '\355\225\234\352\270\200\n'")  # 한글, in UTF-8
        wait_for_line(page, "한글")
        assert page.evaluate(HANGUL_CELLS) == [["한", 2], ["", 0], ["글", 2], ["", 0]]
        # A CJK monospace font first, its Hangul two of its Latin cells wide: no gap between characters.
        font = page.evaluate("window.playground.term.options.fontFamily")
        assert font.startswith('"D2Coding", "Noto Sans Mono CJK KR"'), font
        page.screenshot(path=str(ARTIFACTS / "session-ko.png"))
        page.click("#end-session")
        assert page.inner_text("#confirm-title") == i18n.translate("ko", "ui.end_confirm")
        page.click("#confirm-no")
        page.click("[data-language-choice=en]")  # the switch: remembered, and the server renders it too
        page.wait_for_function("() => document.documentElement.lang === 'en' && window.playground?.term")
        assert page.inner_text("#end-session") == "End session"
        end_from_page(page)
        page.wait_for_selector("#overlay", state="visible")
        page.goto(stack.base_url + "/")  # English on the next visit too, in a Korean browser
        assert page.get_attribute("html", "lang") == "en"
        assert page.get_by_role("button", name="Start playground").is_visible()
    finally:
        context.close()
