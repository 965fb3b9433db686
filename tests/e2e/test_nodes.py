"""Sessions of several nodes in a real Chromium (issue 16): nodes added and removed from the node
panel, one reaching another by name on the session's network; a listener's port badge within 2 s,
opening the port in a new tab (host and path form), shared and unshared, gone when the listener
stops; each node's terminals kept connected while another's are shown; a file dropped on the
terminal uploaded with its progress and downloaded back byte-identical, and one over the limit
refused with the limit in words."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browsing import VIEWPORT, end_from_page, run, start_from_landing, wait_for_line
from tests.stack import Stack
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

NODE = "#node-list li[data-node='{}']"
BADGE = "#node-list li[data-node='{}'] .port-badge[data-port='{}']"
LISTED = """async () => {
  const reply = await fetch(`/api/sessions/${window.playground.sessionId}/instances/`);
  return (await reply.json()).instances.map((i) => i.name);
}"""
# A file of `size` bytes (xorshift, so not all zeros) dropped on the terminal as a visitor would;
# resolves the SHA-256 of its bytes.
DROP = """async ({name, size}) => {
  const bytes = new Uint8Array(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; bytes[i] = x & 255; }
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name));
  const target = document.querySelector('.term-area .xterm-screen');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    target.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}"""
# Every text the transfer line shows, kept in window.transferSeen.
SEEN = """() => {
  window.transferSeen = [];
  const text = document.getElementById('transfer-text');
  const keep = () => window.transferSeen.push(text.textContent);
  new MutationObserver(keep).observe(text, {childList: true, characterData: true, subtree: true});
}"""
# The page hidden or shown, as when another tab comes in front or goes (headless Chromium's page stays visible).
VISIBILITY = """(hidden) => {
  Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
  Object.defineProperty(document, 'visibilityState', {value: hidden ? 'hidden' : 'visible', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""
# The node panel's controls that have no name for a screen reader (no text, aria-label or label).
UNNAMED = """() => [...document.querySelectorAll('.nodes-panel :is(button, a, input:not([type=file]))')]
  .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || (e.labels && e.labels.length)))
  .map((e) => e.outerHTML)"""
MB = 1024 * 1024


def add_node(page: Page, name: str) -> None:
    page.click("#node-add")
    page.wait_for_selector(NODE.format(name))


def show_node(page: Page, name: str) -> None:
    """Choose the node in the panel with the keyboard and wait for its first shell's prompt on screen."""
    page.focus(f"#node-{name}")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.playground.nodes.current() === '{name}'")
    wait_for_line(page, rf".*root@{name}.*#", timeout=30)


def type_line(page: Page, command: str) -> None:
    """Type into the terminal on screen (which has the focus once its node is shown)."""
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def test_nodes_added_from_the_page_reach_each_other_and_a_listener_gets_a_badge_that_opens_it(
    browser: Browser, stack: Stack
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        start_from_landing(page, stack)
        page.wait_for_selector(NODE.format("node1"))
        assert page.is_disabled(f"{NODE.format('node1')} .node-remove")  # the last node stays
        add_node(page, "node2")
        add_node(page, "node3")
        show_node(page, "node2")
        type_line(page, "mkdir -p /tmp/www && echo hello-from-$(hostname) > /tmp/www/index.html")
        type_line(page, "busybox httpd -f -p 8081 -h /tmp/www & echo HTTPD-$((1+1))")
        wait_for_line(page, "HTTPD-2")
        page.wait_for_selector(BADGE.format("node2", 8081), timeout=5000)  # on node2's row

        page.click("#node-node1")  # node1's shell again; node2's terminal stays connected
        page.wait_for_function("() => window.playground.nodes.current() === 'node1'")
        assert page.evaluate("() => window.playground.nodes.tabs('node2').connection(0).isOpen")
        run(page, "wget -qO- http://node2:8081/")  # node2 by name, on the session's private network
        wait_for_line(page, "hello-from-node2", timeout=15)

        run(page, "mkdir -p /tmp/www && echo hello-from-node1 > /tmp/www/index.html")
        run(page, "busybox httpd -f -p 8080 -h /tmp/www & echo HTTPD-$((1+1))")
        wait_for_line(page, "HTTPD-2")
        started = time.monotonic()
        page.wait_for_selector(BADGE.format("node1", 8080), timeout=5000)
        assert time.monotonic() - started <= 2.0, "the badge took more than 2 s"

        with context.expect_page() as opened:  # the badge: the host form, in a new tab
            page.click(f"{BADGE.format('node1', 8080)} .port-open")
        tab = opened.value
        tab.wait_for_load_state()
        assert "hello-from-node1" in tab.content(), tab.url
        assert tab.url.startswith("http://8080-node1-"), tab.url
        tab.close()

        page.click(f"{BADGE.format('node1', 8080)} .port-more")
        assert page.evaluate(UNNAMED) == []  # every control of the panel, the port's menu open, has a name
        with context.expect_page() as opened:  # the path form
            page.click(f"{BADGE.format('node1', 8080)} .port-path")
        tab = opened.value
        tab.wait_for_load_state()
        assert "hello-from-node1" in tab.content(), tab.url
        assert "/ports/" in tab.url, tab.url
        tab.close()

        page.check(f"{BADGE.format('node1', 8080)} .port-share")  # shared: the public link shown, it opens for anyone
        page.wait_for_selector(f"{BADGE.format('node1', 8080)}[data-shared='true'] .port-url", state="visible")
        link = page.input_value(f"{BADGE.format('node1', 8080)} .port-url")
        stranger = browser.new_context()
        try:
            other = stranger.new_page()

            def opened_by_a_stranger() -> str:
                other.goto(link)
                return other.content()

            # The proxy reads the options anew within a second or so.
            eventually(
                opened_by_a_stranger,
                "the shared link opens without the cookie",
                until=lambda html: "hello-from-node1" in html,
                timeout=5,
            )
        finally:
            stranger.close()
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.click(f"{BADGE.format('node1', 8080)} .port-copy")  # Copy link: the host-form link
        eventually(lambda: page.evaluate("() => navigator.clipboard.readText()"), "the link copied", until=link.__eq__)
        page.uncheck(f"{BADGE.format('node1', 8080)} .port-share")
        page.wait_for_selector(f"{BADGE.format('node1', 8080)}[data-shared='false']")
        assert page.is_hidden(f"{BADGE.format('node1', 8080)} .port-url")
        page.check(f"{BADGE.format('node1', 8080)} .port-https")  # TLS to the node, and back
        page.wait_for_selector(f"{BADGE.format('node1', 8080)}[data-https='true']")
        page.uncheck(f"{BADGE.format('node1', 8080)} .port-https")
        page.wait_for_selector(f"{BADGE.format('node1', 8080)}[data-https='false']")

        page.fill("#port-open", "70000")  # a number that is no port: the API's sentence
        page.click("#port-open-form button[type=submit]")
        page.wait_for_selector("#port-open-error", state="visible")
        assert "65535" in page.inner_text("#port-open-error")

        page.click("#terminal")
        run(page, "kill %1")  # the listener stops: its badge goes
        page.wait_for_selector(BADGE.format("node1", 8080), state="detached", timeout=5000)

        add_node(page, "node4")
        add_node(page, "node5")  # shown with its terminal at once
        page.wait_for_function("() => window.playground.nodes.current() === 'node5'")
        page.set_viewport_size({"width": 1280, "height": 720})  # five nodes in the panel: the page still fits
        eventually(  # once the terminal has refitted to the smaller window
            lambda: page.evaluate("() => [document.documentElement.scrollHeight, innerHeight]"),
            "the page as tall as the window",
            timeout=5,
            until=lambda size: size[0] <= size[1],
        )
        page.click("#node-add")  # a sixth: refused, "+ Add node" disabled with the API's sentence
        page.wait_for_selector("#node-add-reason", state="visible")
        assert page.is_disabled("#node-add")
        assert "5 nodes" in page.inner_text("#node-add-reason"), page.inner_text("#node-add-reason")

        page.click(f"{NODE.format('node3')} .node-remove")  # removed from the page, once confirmed
        page.click("#confirm-yes")
        page.wait_for_selector(NODE.format("node3"), state="detached")
        eventually(lambda: page.evaluate(LISTED), "node3 gone from the API's list", until=lambda n: "node3" not in n)
        assert page.is_enabled("#node-add") and page.is_hidden("#node-add-reason")  # room for one again
        assert page.evaluate("() => window.playground.nodes.list()") == ["node1", "node2", "node4", "node5"]
        end_from_page(page)
        page.wait_for_selector("#overlay", state="visible")
        assert page.is_disabled("#node-add")
        assert not errors, errors
    finally:
        context.close()


def test_a_file_dropped_on_the_terminal_uploads_and_downloads_back_byte_identical_and_one_too_large_is_refused(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    start_from_landing(page, stack)
    run(page, "mkdir -p /root/in && cd /root/in")  # the drop goes to the terminal's directory
    wait_for_line(page, r".*root@node1:~/in#.*")
    page.evaluate(SEEN)
    digest = page.evaluate(DROP, {"name": "ten.bin", "size": 10 * MB})
    page.wait_for_function("() => document.getElementById('transfer-status').dataset.kind === 'done'", timeout=60000)
    assert page.inner_text("#transfer-text") == "Uploaded ten.bin to /root/in/ten.bin (10 MiB)."
    seen = page.evaluate("() => window.transferSeen")
    assert any(re.fullmatch(r"Uploading ten\.bin… \d+%", line) for line in seen), seen  # its progress shown
    run(page, "sha256sum ten.bin")  # the node has the same bytes
    wait_for_line(page, f"{digest}  ten.bin")

    page.fill("#download-path", "/root/in/ten.bin")
    with page.expect_download() as download:
        page.click("#download-form button[type=submit]")
    saved = tmp_path / "ten.bin"
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest

    page.fill("#download-path", "/root/in/nothing-here")
    page.click("#download-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('transfer-status').dataset.kind === 'error'")
    assert page.inner_text("#transfer-text").startswith("/root/in/nothing-here: ")

    small = tmp_path / "small.txt"  # Upload: the same with a file picker
    small.write_text("picked\n")
    page.set_input_files("#upload-input", str(small))
    page.wait_for_function("() => document.getElementById('transfer-status').dataset.kind === 'done'")
    assert page.inner_text("#transfer-text") == "Uploaded small.txt to /root/in/small.txt (7 bytes)."

    page.evaluate(DROP, {"name": "big.bin", "size": 60 * MB})
    page.wait_for_function("() => document.getElementById('transfer-status').dataset.kind === 'error'", timeout=60000)
    refused = page.inner_text("#transfer-text")
    assert refused.startswith("big.bin: ") and "50 MB" in refused, refused

    run(page, "dd if=/dev/zero of=/root/fill bs=1M count=200; echo FILLED-$((1+1))")  # the disk quota (96M) reached
    wait_for_line(page, "FILLED-2", timeout=60)
    page.evaluate(DROP, {"name": "late.bin", "size": 10 * MB})
    page.wait_for_function("() => document.getElementById('transfer-status').dataset.kind === 'error'", timeout=60000)
    full = page.inner_text("#transfer-text")
    assert full.startswith("late.bin: ") and "full" in full, full


def test_the_node_list_is_asked_for_about_once_a_second_while_the_page_is_visible_and_not_while_hidden(
    page: Page, stack: Stack
) -> None:
    start_from_landing(page, stack)
    asked: list[float] = []  # (events reach the handler while Playwright waits, not in time.sleep)
    page.on("request", lambda r: asked.append(time.monotonic()) if r.url.endswith("/instances/") else None)
    page.wait_for_timeout(3200)
    assert 2 <= len(asked) <= 4, asked
    page.evaluate(VISIBILITY, True)  # hidden (another tab in front): no more polls
    page.wait_for_timeout(300)  # an answer on its way may still come
    asked.clear()
    page.wait_for_timeout(3000)
    assert asked == []
    page.evaluate(VISIBILITY, False)  # shown again: asked at once
    page.wait_for_timeout(500)
    assert len(asked) == 1, asked


def test_removing_node1_leaves_the_session_to_node2_and_the_sessions_end_still_shows(page: Page, stack: Stack) -> None:
    start_from_landing(page, stack)
    add_node(page, "node2")
    wait_for_line(page, r".*root@node2.*#", timeout=30)  # the node added is shown with its terminal at once
    page.click("#node-node1")
    page.click(f"{NODE.format('node1')} .node-remove")
    page.click("#confirm-yes")
    page.wait_for_selector(NODE.format("node1"), state="detached")
    page.wait_for_function("() => window.playground.nodes.current() === 'node2'")
    page.wait_for_timeout(1500)
    assert page.is_hidden("#overlay")  # node1's end is not the session's
    page.click("#node2-terminal-0")
    type_line(page, "echo still-$((1+1))")
    wait_for_line(page, "still-2")
    assert page.is_disabled(f"{NODE.format('node2')} .node-remove")  # the last node stays
    page.reload()  # the page's own terminal is now node2's
    wait_for_line(page, "still-2")
    assert page.evaluate("() => window.playground.nodes.list()") == ["node2"]
    assert page.is_hidden("#overlay") and page.inner_text("#instance-name") == "node2"
    stack.end_every_session()  # ended elsewhere: the node list tells the page, node1's terminal being gone
    page.wait_for_selector("#overlay", state="visible", timeout=15000)
    assert page.inner_text("#overlay-title") == "Session ended"
