"""Issue 16's first acceptance in a real Chromium, on a Playground whose default image is ``docker``:
nodes added from the page ping each other by name; a container published on port 8080 gets its badge
within 2 s, which opens the container's page in a new tab (host and path form); a websocket echo
server in a node echoes through its port link (both forms); the badge goes when the container stops."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browsing import run, start_from_landing, wait_for_line
from tests.e2e.test_docker_seminar import DOCKERFILE, typed
from tests.e2e.test_nodes import BADGE, add_node, show_node, type_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

BADGE_WAIT = 2.0  # seconds from the `docker run` command's Enter to its port's badge (the acceptance)
# Sends each message on a browser WebSocket to `url` (ws:// or wss://), one after the echo of the
# previous one; resolves the echoes, or rejects with what went wrong.
ECHO = """({url, messages}) => new Promise((resolve, reject) => {
  const socket = new WebSocket(url);
  const echoes = [];
  const timer = setTimeout(() => reject(new Error(`no echo within 10 s, got ${JSON.stringify(echoes)}`)), 10000);
  socket.onopen = () => socket.send(messages[0]);
  socket.onmessage = (event) => {
    echoes.push(String(event.data).trim());
    if (echoes.length < messages.length) { socket.send(messages[echoes.length]); return; }
    clearTimeout(timer);
    socket.close();
    resolve(echoes);
  };
  socket.onclose = (event) => reject(new Error(`closed (${event.code}) after ${JSON.stringify(echoes)}`));
  socket.onerror = () => reject(new Error(`the websocket to ${url} failed`));
})"""
# Every port badge of the node panel, as "<node>:<port>".
BADGES = """() => [...document.querySelectorAll('#node-list .port-badge')]
  .map((badge) => `${badge.closest('li[data-node]').dataset.node}:${badge.dataset.port}`)"""
MESSAGES = ["hello", "안녕하세요", "x" * 2000]


def opened_tab(page: Page, selector: str) -> Page:
    """The new tab that a click on ``selector`` (a link with target _blank) opens, loaded."""
    with page.context.expect_page() as opened:
        page.click(selector)
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def test_nodes_ping_each_other_and_a_published_container_and_a_websocket_echo_open_through_their_port_links(
    page: Page, docker_stack: Stack
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    start_from_landing(page, docker_stack)
    add_node(page, "node2")
    add_node(page, "node3")
    show_node(page, "node3")
    show_node(page, "node2")
    type_line(page, "websocketd --port=9000 cat & echo WS-$((1+1))")  # an echo server in node2
    wait_for_line(page, "WS-2")

    show_node(page, "node1")
    typed(page, "ping -c1 node2")
    wait_for_line(page, r"1 packets transmitted, 1 received, 0% packet loss.*", 1)
    for line in DOCKERFILE:  # <web server image>: busybox's httpd, built offline
        typed(page, line)
    typed(page, "docker build -q -t web:1 .")
    run(page, "docker run -d --name web -p 8080:80 web:1")
    entered = time.monotonic()
    page.wait_for_selector(BADGE.format("node1", 8080), timeout=10000)
    waited = time.monotonic() - entered
    print(f"badge 8080 shown {waited:.2f} s after the docker run command's Enter")
    assert waited <= BADGE_WAIT, f"the badge took {waited:.2f} s"
    page.wait_for_selector(BADGE.format("node2", 9000))
    # One badge per port (docker-proxy may listen on 0.0.0.0 and ::), none for the container's own port 80.
    assert sorted(page.evaluate(BADGES)) == ["node1:8080", "node2:9000"]

    # docker-proxy listens (the badge) a moment before the container's httpd does: a click then gets
    # the waiting page, which loads the link again every 2 s, as a visitor would see it.
    tab = opened_tab(page, f"{BADGE.format('node1', 8080)} .port-open")  # the host form
    assert tab.url.startswith("http://8080-node1-"), tab.url
    expect(tab.locator("body")).to_contain_text("hello-from-apa02", timeout=10000)
    tab.close()
    page.click(f"{BADGE.format('node1', 8080)} .port-more")
    tab = opened_tab(page, f"{BADGE.format('node1', 8080)} .port-path")  # the path form
    assert "/ports/" in tab.url and "/node1/8080~" in tab.url, tab.url  # with the owner's pass
    expect(tab.locator("body")).to_contain_text("hello-from-apa02", timeout=10000)
    tab.close()

    tab = opened_tab(page, f"{BADGE.format('node2', 9000)} .port-open")  # the handoff: the host's cookie
    assert tab.url.startswith("http://9000-node2-"), tab.url
    echoes = tab.evaluate(ECHO, {"url": "ws://" + tab.url.split("://", 1)[1], "messages": MESSAGES})
    assert echoes == MESSAGES
    tab.close()
    page.click(f"{BADGE.format('node2', 9000)} .port-more")
    tab = opened_tab(page, f"{BADGE.format('node2', 9000)} .port-path")
    path_link = tab.url
    tab.close()
    echoes = page.evaluate(ECHO, {"url": "ws://" + path_link.split("://", 1)[1], "messages": MESSAGES})
    assert echoes == MESSAGES  # from the session's page, by the owner's pass in the path

    typed(page, "docker stop web")
    stopped = time.monotonic()
    page.wait_for_selector(BADGE.format("node1", 8080), state="detached", timeout=5000)
    print(f"badge 8080 gone {time.monotonic() - stopped:.2f} s after docker stop returned")
    assert not errors, errors
