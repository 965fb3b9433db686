"""A Play with Docker training post (tests/fixtures/pwd: two terminals, nginx published on 8080)
imported with ``manage.py labs import-pwd`` plays through on the two docker nodes of its session:
each step's run blocks run on the node they name (``.term1`` on node1, ``.term2`` on node2), node2
reaches node1's published port by name over the session's private network, and the step's port
link opens nginx's page. The images come from the seeded mirror (no upstream)."""

from __future__ import annotations

import html
import re

import pytest

from playground import config
from playground.labs import pwd, render
from tests.dockerkit import log, run
from tests.labkit import sandbox_of, through_port_link
from tests.stack import Stack
from tests.waiting import eventually

# Long (a two-node docker session on the seeded stack): beside the rest, with the seeded images' tests.
pytestmark = pytest.mark.alongside

POST = config.REPO_DIR / "tests" / "fixtures" / "pwd" / "2017-07-13-web-on-two-nodes.md"
RUN_BLOCK = re.compile(r'data-action="run" data-node="(node\d+)"><pre><code[^>]*>(.*?)</code></pre>', re.S)
PORT_LINK = re.compile(r'<a class="lab-port" href="#" data-port="(\d+)" data-node="(node\d+)"')


async def test_a_play_with_docker_post_with_two_terminals_and_a_published_port_plays_through_on_two_nodes(
    seeded_stack: Stack,
) -> None:
    imported = seeded_stack.manage("labs", "import-pwd", str(POST))
    assert "web-on-two-nodes" in imported, imported
    steps = pwd.read_post(POST).steps
    session = seeded_stack.start_session(lab="web-on-two-nodes")
    shown = eventually(
        lambda: seeded_stack.shown(session)["instances"],
        "the lab's two nodes running",
        90,
        0.3,
        until=lambda nodes: len(nodes) == 2 and all(node["state"] == "running" for node in nodes),
    )
    assert sorted(node["name"] for node in shown) == ["node1", "node2"]
    sandboxes = {name: sandbox_of(seeded_stack, session, name) for name in ("node1", "node2")}
    for sandbox in sandboxes.values():
        engine = await run(
            seeded_stack, sandbox, "timeout 55 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'"
        )
        assert engine["code"] == 0, engine["output"] + await log(seeded_stack, sandbox)

    said: list[tuple[str, str]] = []  # (node, output) of every run block, in order
    for number, step in enumerate(steps, 1):
        page = render.render(step.markdown["en"])  # the step as the lab page shows it
        blocks = [(node, html.unescape(code)) for node, code in RUN_BLOCK.findall(page)]
        assert blocks, f"step {number} ({step.titles['en']}) has no run block"
        for node, code in blocks:
            if "wget" in code:  # node1's nginx may take a moment to listen after `docker run -d`
                code = f"timeout 20 sh -c 'until wget -qO- http://node1:8080/ >/dev/null; do sleep 0.3; done'; {code}"
            out = await run(seeded_stack, sandboxes[node], code, 120)
            assert out["code"] == 0, (number, node, code, out["output"], await log(seeded_stack, sandboxes[node]))
            said.append((node, str(out["output"])))
        for port, node in PORT_LINK.findall(page):
            assert b"Welcome to nginx!" in through_port_link(seeded_stack, session, int(port), node)

    assert [node for node, _ in said] == ["node1", "node1", "node2", "node1"], said
    assert "web 0.0.0.0:8080->80/tcp" in said[1][1], said[1]
    assert "<!DOCTYPE html>" in said[2][1] or "<html>" in said[2][1], said[2]  # nginx's page, from node2
    gone = await run(seeded_stack, sandboxes["node1"], "docker ps -aq | wc -l")
    assert gone["output"].strip() == "0", gone
    seeded_stack.end_session(session)
