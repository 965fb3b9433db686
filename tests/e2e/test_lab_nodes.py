"""A lab of several nodes in a real Chromium (issue 16): the lab starts with the nodes it declares
(``nodes`` in lab.toml), and a run block that names a node (```` ```sh run node2 ````) types its
command into that node's terminal, shown first, whichever node is on screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.browsing import wait_for_line
from tests.e2e.test_labs import start_lab
from tests.labkit import add_lab, step
from tests.stack import Stack

pytestmark = pytest.mark.e2e

BLOCKS = (
    '<p>On node2:</p><div class="lab-code" data-action="run" data-node="node2"><pre><code>'
    "echo ran-on-$(hostname)</code></pre></div>"
    '<p>Here:</p><div class="lab-code" data-action="run"><pre><code>echo typed-here</code></pre></div>'
)


def test_a_run_block_naming_node2_types_into_node2s_terminal(page: Page, stack: Stack) -> None:
    add_lab(stack, "two-nodes", [step("Two nodes", html=BLOCKS)], nodes=["busybox", "busybox"])
    start_lab(page, stack, "two-nodes")
    page.wait_for_selector("#node-list li[data-node='node2']", state="attached")  # the list may be folded
    buttons = page.locator("#lab-panel .lab-run")
    assert buttons.all_inner_texts() == ["Run · node2", "Run"]
    page.wait_for_function(
        """async () => {
          const reply = await fetch(`/api/sessions/${window.playground.sessionId}/instances/`);
          return (await reply.json()).instances.every((i) => i.state === 'running');
        }""",
        timeout=30000,
    )
    buttons.nth(0).click()
    wait_for_line(page, r".*ran-on-node2")  # the terminal on screen is node2's now
    assert page.evaluate("() => window.playground.nodes.current()") == "node2"
    buttons.nth(1).click()  # no node named: the terminal on screen, node2's
    wait_for_line(page, r"typed-here")
    assert page.evaluate("() => window.playground.nodes.current()") == "node2"
