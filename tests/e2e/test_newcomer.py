"""The pages as a newcomer meets them, in a real Chromium at the four sizes of issue 16 (a 1366x768
and a 1280x720 laptop, a 1920x1080 projector, each in the light and the dark theme, and a 390 px
wide phone): no page taller than the window, every control of the top bar in reach, a lab's Start
and Next in view; and the landing page: the ready images and the templates to choose from, and the
sessions this browser started, to resume (the same shell) or to end (once confirmed)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browsing import ARTIFACTS, run, start_from_landing, wait_for_line
from tests.imagekit import images_cli
from tests.stack import Stack
from tests.visitors import no_live_sessions
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

LAPTOPS_AND_PROJECTOR = [(1366, 768), (1280, 720), (1920, 1080)]
PHONE = (390, 844)
# A device class per browser context: a phone's context is a mobile one (its page is laid out at
# the device's width and zoomed out when it overflows), so it is not a desktop window resized.
DEVICES = {"desktop": (False, LAPTOPS_AND_PROJECTOR), "phone": (True, [PHONE])}  # mobile?, window sizes

PAGE_SIZE = """() => { const root = document.documentElement;
  return {height: root.scrollHeight, window: innerHeight, width: root.scrollWidth, windowWidth: innerWidth,
    scrolled: root.scrollTop}; }"""
# Each visible control of the top bar and the node panel that is outside the window or covered where a click lands.
OUT_OF_REACH = """() => {
  const controls = [...document.querySelectorAll('.topbar button, .topbar a, .nodes-panel button, .nodes-panel input')]
    .filter((e) => e.getClientRects().length);
  const shown = controls.map((e) => {
    const r = e.getBoundingClientRect();
    const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
    return {control: e.id || e.textContent, box: [r.left, r.top, r.right, r.bottom],
      inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
      clickable: hit !== null && (hit === e || e.contains(hit))};
  });
  return {controls: shown.map((c) => c.control), outOfReach: shown.filter((c) => !c.inside || !c.clickable)};
}"""
# The terminal's last row within its area, and what shows under it: the terminal's background.
TERMINAL_BOX = """() => {
  const area = document.querySelector('.term-area');
  const screen = area.querySelector('.xterm-screen').getBoundingClientRect();
  return {screenBottom: screen.bottom, areaBottom: area.getBoundingClientRect().bottom,
    under: getComputedStyle(area.querySelector('.xterm-viewport')).backgroundColor,
    background: getComputedStyle(area).backgroundColor};
}"""
TERM_SIZE = "() => [window.playground.term.cols, window.playground.term.rows]"
BOX = """(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, window: innerHeight}; }"""

# The node panel's controls (open on a laptop's and a projector's window, a menu opened with Nodes on a phone).
NODE_PANEL_CONTROLS = {"nodes-toggle", "node-add", "node-node1", "port-open", "download-path", "upload-button"}

SHIPPED_LAB = "containers-from-the-inside"
PICKED = "e2e-picked"  # an image made for the picker's test: busybox's layers, with an environment variable


@pytest.fixture(params=list(DEVICES))
def device(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[Page, list[tuple[int, int]]]]:
    """A page in a context of one device class, and that class's window sizes."""
    mobile, sizes = DEVICES[request.param]
    width, height = sizes[0]
    context = browser.new_context(
        viewport={"width": width, "height": height},
        is_mobile=mobile,
        has_touch=mobile,
        device_scale_factor=3 if mobile else 1,
    )
    try:
        yield context.new_page(), sizes
    finally:
        context.close()


def resize(page: Page, width: int, height: int) -> None:
    """Give the page this window size and wait until the terminal has refitted to it."""
    page.set_viewport_size({"width": width, "height": height})
    last: list[Any] = []

    def refitted() -> bool:
        now = page.evaluate(TERM_SIZE)
        settled = last == [now]
        last[:] = [now]
        return settled

    eventually(refitted, f"the terminal refitted to {width}x{height}", timeout=5, interval=0.2)


def assert_fits(page: Page, where: str, shown: frozenset[str] = frozenset({"end-session"})) -> None:
    """No scrolling, sideways or down; every control of the top bar and the node panel shown is in
    reach, ``shown`` among them."""
    size = page.evaluate(PAGE_SIZE)
    assert size["height"] <= size["window"] and size["width"] <= size["windowWidth"], (where, size)
    reach = page.evaluate(OUT_OF_REACH)
    assert shown <= set(reach["controls"]) and not reach["outOfReach"], (where, reach)


def assert_terminal_fits(page: Page, where: str) -> None:
    """The terminal's last row is inside its area, and under it is the terminal's own background."""
    box = page.evaluate(TERMINAL_BOX)
    assert box["screenBottom"] <= box["areaBottom"], (where, box)
    assert box["under"] == box["background"], (where, box)
    page.click("#terminal")  # a click on the terminal scrolls nothing (it used to scroll the top bar away)
    assert page.evaluate(PAGE_SIZE)["scrolled"] == 0, where


def test_the_session_page_fits_the_window_at_every_size_in_both_themes(
    device: tuple[Page, list[tuple[int, int]]], stack: Stack
) -> None:
    page, sizes = device
    start_from_landing(page, stack)
    run(page, "ls /")
    for width, height in sizes:
        resize(page, width, height)
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)  # the page follows the system's theme
            page.wait_for_function(f"() => document.documentElement.dataset.theme === '{theme}'")
            where = f"{width}x{height} {theme}"
            assert_fits(page, where, frozenset({"end-session"} | (set() if sizes == [PHONE] else NODE_PANEL_CONTROLS)))
            assert_terminal_fits(page, where)
    if sizes == [PHONE]:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone.png"))
        page.click("#nodes-toggle")  # the node panel, a menu over the terminal
        assert_fits(page, "phone, node panel open", frozenset({"end-session"} | NODE_PANEL_CONTROLS))
        page.screenshot(path=str(ARTIFACTS / "phone-nodes.png"))
        page.keyboard.press("Escape")  # closes it, the focus back on Nodes
        assert page.get_attribute("#nodes-toggle", "aria-expanded") == "false"
        assert page.evaluate("() => document.activeElement.id") == "nodes-toggle"
    page.click("#end-session")  # in reach on every size: the question, then the end
    page.click("#confirm-yes")
    page.wait_for_selector("#overlay", state="visible")


def check(page: Page) -> None:
    """Check the lab's step and wait for its result."""
    page.evaluate("() => { document.getElementById('lab-result').dataset.state = ''; }")
    page.click("#lab-check")
    page.wait_for_function(
        "() => ['passed', 'failed'].includes(document.getElementById('lab-result').dataset.state)", timeout=30000
    )


def test_a_labs_start_shows_without_scrolling_and_next_stays_in_view_after_check(
    device: tuple[Page, list[tuple[int, int]]], stack: Stack
) -> None:
    page, sizes = device
    page.goto(f"{stack.base_url}/labs/{SHIPPED_LAB}/?language=en")
    for width, height in sizes:
        page.set_viewport_size({"width": width, "height": height})
        start = page.evaluate(BOX, "#lab-start")
        assert 0 <= start["top"] and start["bottom"] <= start["window"], (width, height, start)
    page.click("#lab-start")
    page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#lab-panel")
    wait_for_line(page, r".*root@node1.*#")
    page.wait_for_function("() => !document.getElementById('lab-check').disabled", timeout=30000)
    check(page)  # step 1 not done yet: a result with the check's output, above Next
    assert page.get_attribute("#lab-result", "data-state") == "failed"
    for width, height in sizes:
        resize(page, width, height)
        where = f"lab at {width}x{height}"
        assert_fits(page, where)
        panel, following = page.evaluate(BOX, "#lab-panel"), page.evaluate(BOX, "#lab-next")
        assert panel["top"] <= following["top"] and following["bottom"] <= min(panel["bottom"], panel["window"]), (
            where,
            panel,
            following,
        )
        assert page.is_visible("#lab-result"), where
    page.click("#lab-next")  # not covered: it opens step 2
    page.wait_for_function("() => document.getElementById('lab-panel').dataset.step === '2'")


@pytest.fixture
def picked_image(stack: Stack) -> Iterator[str]:
    """A second ready image in the stack's store (busybox's directory, renamed, with PICKED_BY set),
    removed again once no sandbox uses it."""
    images = stack.data_dir / "images"
    subprocess.run(["cp", "-a", str(images / "busybox"), str(images / PICKED)], check=True)  # owners kept
    meta = json.loads((images / PICKED / "image.json").read_text())
    meta.update(name=PICKED, env=[*meta["env"], f"PICKED_BY=the-{PICKED}-image"])
    (images / PICKED / "image.json").write_text(json.dumps(meta))
    try:
        yield PICKED
    finally:
        stack.end_every_session()
        no_live_sessions(stack)
        removed = images_cli(stack, "remove", PICKED)
        assert removed.returncode == 0, removed.stdout + removed.stderr


def test_the_landing_page_offers_the_ready_images_with_the_default_chosen_and_starts_the_one_picked(
    page: Page, stack: Stack, picked_image: str
) -> None:
    def offered() -> list[str]:
        page.goto(stack.base_url + "/")  # the web tier asks the agent for its images every 5 s at most
        return page.eval_on_selector_all("#image option", "(options) => options.map((o) => o.value)")

    images = eventually(offered, f"the landing page offers {picked_image}", until=lambda names: picked_image in names)
    assert "busybox" in images, images
    assert page.input_value("#image") == "busybox"  # the stack's default image, chosen
    page.select_option("#image", picked_image)
    page.get_by_role("button", name="Start playground").click()
    page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    page.wait_for_function("() => window.playground && window.playground.session")
    assert page.evaluate("() => window.playground.session.image") == picked_image
    wait_for_line(page, r".*root@node1.*#")
    run(page, "echo picked by $PICKED_BY")
    wait_for_line(page, f"picked by the-{picked_image}-image")


def shell_pid(page: Page, word: str) -> str:
    """The shell's pid, printed after ``word`` (a fresh word each time: the screen keeps older lines)."""
    run(page, f"echo {word} $$")
    lines = wait_for_line(page, rf"{word} \d+")
    return next(line.split()[1] for line in lines if re.fullmatch(rf"{word} \d+", line.strip()))


def test_a_visitor_who_closed_the_tab_resumes_the_same_shell_from_the_landing_page_and_ends_it_there(
    browser: Browser, stack: Stack
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        start_from_landing(page, stack)
        session_id = page.evaluate("() => window.playground.sessionId")
        before = shell_pid(page, "before")
        page.close()  # the tab is closed; the session runs on

        page = context.new_page()
        page.goto(stack.base_url + "/")
        row = f"#my-sessions-list li[data-session-id='{session_id}']"
        page.wait_for_selector(row)
        assert page.locator("#my-sessions-list li").count() == 1
        assert "busybox" in page.inner_text(row)
        for width, height in [*LAPTOPS_AND_PROJECTOR, PHONE]:
            page.set_viewport_size({"width": width, "height": height})
            assert_landing_fits(page, f"{width}x{height}")
        page.click(f"{row} .my-session-resume")
        page.wait_for_url(f"{stack.base_url}/s/{session_id}/")
        page.wait_for_function("() => window.playground && window.playground.term")
        assert shell_pid(page, "after") == before  # the same shell, not a new one

        page.goto(stack.base_url + "/")
        page.click(f"{row} .my-session-end")
        page.click("#confirm-no")  # asked first: "Keep it" keeps it listed
        assert page.is_visible(row)
        page.click(f"{row} .my-session-end")
        page.click("#confirm-yes")
        page.wait_for_selector("#my-sessions", state="hidden")
        state = page.evaluate(f"async () => (await (await fetch('/api/sessions/{session_id}/')).json()).state")
        assert state in ("ending", "ended"), state
        page.reload()
        assert page.is_hidden("#my-sessions")  # an ended session is no longer listed
    finally:
        context.close()


SHIPPED_TEMPLATE = "swarm-3m2w"


def test_the_landing_page_offers_the_templates_beside_the_images_and_fits_with_one_chosen(
    device: tuple[Page, list[tuple[int, int]]], stack: Stack
) -> None:
    page, sizes = device
    page.goto(stack.base_url + "/")
    assert page.is_checked("#choice-node")  # one node of an image, unless a template is chosen
    offered = page.eval_on_selector_all("#template option", "(options) => options.map((o) => o.value)")
    assert SHIPPED_TEMPLATE in offered, offered
    about = f".template-about[data-template='{SHIPPED_TEMPLATE}']"
    assert page.is_hidden(about)
    page.select_option("#template", SHIPPED_TEMPLATE)  # using the menu chooses the template's side
    assert page.is_checked("#choice-template") and page.is_visible(about)
    assert page.inner_text(f"{about} .template-nodes").startswith("5 nodes: node1 manager (leader)")
    for width, height in sizes:
        page.set_viewport_size({"width": width, "height": height})
        assert_landing_fits(page, f"{width}x{height}, a template chosen", ("#start", "#template", about))
    page.check("#choice-node")  # back to one node: the description goes
    assert page.is_hidden(about)


def assert_landing_fits(page: Page, where: str, shown: tuple[str, ...] = ("#start", "#my-sessions")) -> None:
    """The landing page: the ``shown`` elements (Start and the list of sessions) in the window, no scrolling."""
    size = page.evaluate(PAGE_SIZE)
    assert size["height"] <= size["window"] and size["width"] <= size["windowWidth"], (where, size)
    for selector in shown:
        box = page.evaluate(BOX, selector)
        assert 0 <= box["top"] and box["bottom"] <= box["window"], (where, selector, box)
