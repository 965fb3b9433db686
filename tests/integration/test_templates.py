"""Session templates on a real stack (docs/templates.md): a template's nodes start as sandboxes and
each one's setup runs inside it, in order, with the values of the ones before."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_nodes import in_node
from tests.stack import REPO, Stack
from tests.waiting import eventually

PAIR = """
title = "A pair"
image = "busybox"

[[nodes]]
role = "first"
setup = 'echo "$ADDRESS" > /root/me; echo "@set GREETING=hello-from-$NODE"; echo "$NODE is ready"'

[[nodes]]
role = "second"
setup = 'echo "$GREETING to $NODE, first at $NODE1_ADDRESS" > /root/greeting; hostname'
"""


@pytest.fixture(scope="module")
def templates_stack() -> Iterator[Stack]:
    """A stack whose templates directory (in its data directory, which the web user can read)
    holds ``pair`` and the shipped ``swarm-3m2w``."""
    stack = Stack.create()
    directory = stack.data_dir / "templates"
    directory.mkdir(mode=0o755)
    (directory / "pair.toml").write_text(PAIR)
    shutil.copy(REPO / "templates" / "swarm-3m2w.toml", directory)
    stack.env["PLAYGROUND_TEMPLATES_DIR"] = str(directory)
    try:
        stack.start()
        yield stack
    finally:
        stack.end_started_sessions()
        stack.stop()


def finished_setup(stack: Stack, session: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The session's ``template`` part once its setup is done or failed."""

    def template() -> dict[str, Any]:
        path = f"/api/sessions/{session['id']}/"
        response = stack.request("GET", path, headers={"Authorization": f"Session {session['key']}"})
        assert response.status == 200, response.body
        return dict(response.json()["template"])

    return eventually(
        template,
        "the template's setup finished",
        timeout,
        until=lambda t: t["state"] != "running" and t["state"] != "waiting",
    )


def test_a_two_node_templates_setup_runs_in_each_node_in_order_with_the_first_ones_values(
    templates_stack: Stack,
) -> None:
    session = templates_stack.start_session(template="pair")
    assert [n["name"] for n in session["instances"]] == ["node1", "node2"]
    setup = finished_setup(templates_stack, session, 60)
    assert setup["state"] == "done", setup
    assert "== node1 (first)\n" in setup["log"] and "node1 is ready\n" in setup["log"], setup
    assert "== node2 (second)\nnode2\n" in setup["log"], setup
    first = asyncio.run(in_node(templates_stack, session, "node1", "cat /root/me")).strip()
    greeting = asyncio.run(in_node(templates_stack, session, "node2", "cat /root/greeting")).strip()
    assert greeting == f"hello-from-node1 to node2, first at {first}", greeting
