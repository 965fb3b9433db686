"""The terminal page's comfort features in a real Chromium: font size, light and dark themes,
search in the scrollback, copy and paste, the context menu, and the layout on a laptop and a
projector (screenshots in test-artifacts/)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browsing import ARTIFACTS, VIEWPORT, run, screen, start_from_landing, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

TERM_SIZE = "() => [window.playground.term.options.fontSize, window.playground.term.rows, window.playground.term.cols]"
BACKGROUNDS = """() => [getComputedStyle(document.body).backgroundColor,
  getComputedStyle(document.querySelector('.term-area')).backgroundColor,
  window.playground.term.options.theme.background]"""
CLIPBOARD = "() => navigator.clipboard.readText()"


@pytest.fixture
def clipboard_page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A page whose origin may read and write the clipboard (as a visitor allows when asked)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.base_url)
        yield context.new_page()
    finally:
        context.close()


def stty_size(page: Page) -> None:
    """Wait until the shell's idea of the size matches the terminal's."""
    _, rows, cols = page.evaluate(TERM_SIZE)
    run(page, "stty size")
    wait_for_line(page, f"{rows} {cols}")


def test_the_font_size_buttons_and_keys_resize_the_terminal_and_are_remembered(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    size, rows, cols = page.evaluate(TERM_SIZE)
    assert size == 14
    page.click("#font-bigger")
    page.click("#font-bigger")
    page.wait_for_function("() => window.playground.term.options.fontSize === 18")
    page.wait_for_function(f"() => window.playground.term.cols < {cols} && window.playground.term.rows < {rows}")
    assert page.inner_text("#font-size") == "18px"
    stty_size(page)
    page.keyboard.press("Control+Minus")  # the terminal has the focus after typing
    page.wait_for_function("() => window.playground.term.options.fontSize === 16")
    stty_size(page)
    page.reload()
    page.wait_for_function("() => window.playground && window.playground.term.options.fontSize === 16")
    page.keyboard.press("Control+0")
    page.wait_for_function("() => window.playground.term.options.fontSize === 14")


def test_presentation_mode_enlarges_the_text_and_gives_the_size_back(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    _, rows, cols = page.evaluate(TERM_SIZE)
    page.click("#present-toggle")
    page.wait_for_function("() => window.playground.term.options.fontSize === 22")
    assert page.get_attribute("#present-toggle", "aria-pressed") == "true"
    assert page.evaluate("() => document.documentElement.classList.contains('is-presenting')")
    page.wait_for_function(f"() => window.playground.term.cols < {cols} && window.playground.term.rows < {rows}")
    stty_size(page)
    page.click("#present-toggle")
    page.wait_for_function("() => window.playground.term.options.fontSize === 14")
    assert not page.evaluate("() => document.documentElement.classList.contains('is-presenting')")


def test_the_theme_follows_the_system_until_the_visitor_toggles_it(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    try:
        page = context.new_page()
        start_from_landing(page, stack)
        assert page.get_attribute("html", "data-theme") == "light"
        assert page.evaluate(BACKGROUNDS) == ["rgb(246, 248, 250)", "rgb(255, 255, 255)", "#ffffff"]
        page.click("#theme-toggle")
        page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
        assert page.evaluate(BACKGROUNDS) == ["rgb(13, 17, 23)", "rgb(13, 17, 23)", "#0d1117"]
        page.emulate_media(color_scheme="light")  # a chosen theme outlives the system's
        page.reload()
        page.wait_for_function("() => window.playground && window.playground.term")
        assert page.get_attribute("html", "data-theme") == "dark"
        assert page.get_attribute("#theme-toggle", "aria-label") == "Switch to the light theme"
    finally:
        context.close()


def test_search_finds_a_marker_that_scrolled_out_of_view(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    run(page, "echo needle-$((6*7)); seq 1 300")
    wait_for_line(page, "300")
    assert page.evaluate("() => window.playground.term.buffer.active.viewportY") > 0
    page.keyboard.press("Control+Shift+F")
    page.wait_for_selector("#search-bar", state="visible")
    assert page.evaluate("() => document.activeElement.id") == "search-input"
    page.keyboard.type("needle-42")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.playground.term.getSelection() === 'needle-42'")
    page.wait_for_function("() => document.getElementById('search-count').textContent === '1 of 1'")
    row = next(i for i, line in enumerate(screen(page)) if line.strip() == "needle-42")
    top = page.evaluate("() => window.playground.term.buffer.active.viewportY")
    assert top <= row < top + page.evaluate("() => window.playground.term.rows"), "the match was not scrolled into view"
    page.fill("#search-input", "no-such-text-anywhere")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('search-count').textContent === 'No matches'")
    page.keyboard.press("Escape")
    page.wait_for_selector("#search-bar", state="hidden")


def test_paste_from_the_keyboard_and_the_context_menu_sends_the_clipboard(clipboard_page: Page, stack: Stack) -> None:
    page = clipboard_page
    start_from_landing(page, stack)
    page.evaluate("() => navigator.clipboard.writeText('echo pasted-$((5*5))')")
    page.click("#terminal")
    page.keyboard.press("Control+Shift+V")
    wait_for_line(page, re.escape("root@node1:~# echo pasted-$((5*5))"))  # pasting reads the clipboard first
    page.keyboard.press("Enter")
    wait_for_line(page, "pasted-25")
    page.evaluate("() => navigator.clipboard.writeText('echo inserted-$((4*4))')")
    page.keyboard.press("Shift+Insert")
    wait_for_line(page, re.escape("root@node1:~# echo inserted-$((4*4))"))
    page.keyboard.press("Enter")
    wait_for_line(page, "inserted-16")
    page.evaluate("() => navigator.clipboard.writeText('echo menu-$((2*3))')")
    page.click("#terminal", button="right")
    page.wait_for_selector("#context-menu", state="visible")
    page.click("#menu-paste")
    page.wait_for_selector("#context-menu", state="hidden")
    wait_for_line(page, re.escape("root@node1:~# echo menu-$((2*3))"))
    page.keyboard.press("Enter")
    wait_for_line(page, "menu-6")


def test_selecting_with_the_mouse_copies_and_ctrl_shift_c_copies_too(clipboard_page: Page, stack: Stack) -> None:
    page = clipboard_page
    start_from_landing(page, stack)
    run(page, "clear; echo copy-me-$((100+23))")
    wait_for_line(page, "copy-me-123")
    row = next(i for i, line in enumerate(screen(page)) if line.strip() == "copy-me-123")
    row -= page.evaluate("() => window.playground.term.buffer.active.viewportY")
    box = page.locator("#terminal .xterm-screen").bounding_box()
    assert box is not None
    rows, cols = page.evaluate("() => [window.playground.term.rows, window.playground.term.cols]")
    cell_w, cell_h = box["width"] / cols, box["height"] / rows
    page.mouse.dblclick(box["x"] + 3.5 * cell_w, box["y"] + (row + 0.5) * cell_h)  # a word: the whole line
    page.wait_for_function("() => window.playground.term.getSelection() === 'copy-me-123'")
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'copy-me-123'")
    page.evaluate("() => navigator.clipboard.writeText('something else')")
    page.keyboard.press("Control+Shift+C")
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'copy-me-123'")


def test_the_context_menu_works_from_the_keyboard(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    page.click("#terminal", button="right")
    page.wait_for_selector("#context-menu", state="visible")
    assert page.is_disabled("#menu-copy"), "Copy needs a selection"
    assert page.evaluate("() => document.activeElement.id") == "menu-paste"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.id") == "menu-select-all"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # Search…
    page.wait_for_selector("#search-bar", state="visible")
    assert page.is_hidden("#context-menu")
    page.keyboard.press("Escape")
    page.click("#terminal", button="right")
    page.keyboard.press("Escape")
    page.wait_for_selector("#context-menu", state="hidden")
    assert page.evaluate("() => document.activeElement.classList.contains('xterm-helper-textarea')")


@pytest.mark.parametrize(
    ("width", "height", "name", "font_size"), [(1366, 768, "laptop", 14), (1920, 1080, "projector", 18)]
)
def test_the_page_fits_a_laptop_and_a_projector(
    browser: Browser, stack: Stack, width: int, height: int, name: str, font_size: int
) -> None:
    """One line of topbar, nothing cut off or overflowing, a terminal of a useful size in a font
    that suits the screen (larger on a projector); a screenshot per theme, and one in presentation
    mode, for a person to look at."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme="dark")
    try:
        page = context.new_page()
        start_from_landing(page, stack)
        run(page, "printf '\\354\\225\\210\\353\\205\\225\\355\\225\\230\\354\\204\\270\\354\\232\\224\\n'; ls /")
        wait_for_line(page, "안녕하세요")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        topbar = page.locator(".topbar").bounding_box()
        assert topbar is not None and topbar["height"] < 64, topbar
        for control in ("#font-smaller", "#font-bigger", "#theme-toggle", "#search-open", "#end-session"):
            box = page.locator(control).bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width, (control, box)
        size, rows, cols = page.evaluate(TERM_SIZE)
        assert size == font_size
        assert rows >= 30 and cols >= 120, (rows, cols)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-dark.png"))
        page.click("#theme-toggle")
        page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
        page.screenshot(path=str(ARTIFACTS / f"{name}-light.png"))
        page.click("#present-toggle")
        page.wait_for_function("() => window.playground.term.options.fontSize === 22")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(ARTIFACTS / f"{name}-presenting.png"))
    finally:
        context.close()
