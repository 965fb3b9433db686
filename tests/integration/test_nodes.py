"""Nodes of a session on a real stack (issue 16): added through the API, each its own sandbox named
after it, reaching each other by name on the session's private network; a removed node's sandbox
is gone while the others go on; ending the session leaves none of them."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

from sandbox.wire.client import AgentClient
from tests.dockerkit import build_docker_image
from tests.stack import Response, Stack, Terminal
from tests.waiting import eventually


def nodes_api(stack: Stack, method: str, session: dict[str, Any], name: str = "") -> Response:
    path = f"/api/sessions/{session['id']}/instances/{name + '/' if name else ''}"
    return stack.request(
        method, path, {} if method == "POST" else None, headers={"Authorization": f"Session {session['key']}"}
    )


def sandbox_ids(stack: Stack, session: dict[str, Any]) -> dict[str, str]:
    """The sandbox id of each node of ``session``, by name, from the stack's database."""
    with sqlite3.connect(f"file:{stack.data_dir / 'web' / 'db.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT name, id FROM sandboxes_instance WHERE session_id = ?", (uuid.UUID(session["id"]).hex,)
        ).fetchall()
    return {name: uuid.UUID(str(row_id)).hex for name, row_id in rows}


def on_host(stack: Stack) -> dict[str, dict[str, Any]]:
    """The agent's sandboxes, by id."""
    agent = AgentClient(stack.data_dir / "run" / "agent.sock")
    return {s["id"]: s for s in agent.call("list")["sandboxes"]}


def running_nodes(stack: Stack, session: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = nodes_api(stack, "GET", session)
    assert response.status == 200, response.body
    return {n["name"]: n for n in response.json()["instances"] if n["state"] == "running"}


async def in_node(stack: Stack, session: dict[str, Any], name: str, command: str, timeout: float = 15) -> str:
    """What ``command`` prints in node ``name``'s first shell."""
    path = f"/ws/sessions/{uuid.UUID(session['id']).hex}/{name}/"
    terminal = await Terminal.open(f"ws://127.0.0.1:{stack.port}{path}?key={session['key']}")
    try:
        return await terminal.run(command, timeout)
    finally:
        await terminal.close()


def test_added_nodes_reach_each_other_by_name_and_a_removed_one_leaves_the_others_running(stack: Stack) -> None:
    """node2 and node3 added through the API run as sandboxes of those hostnames; node1 fetches a
    page from node3 by name; node2's removal destroys its sandbox only; the session's end, the rest."""
    session = stack.start_session()
    added = [nodes_api(stack, "POST", session) for _ in range(2)]
    assert [r.status for r in added] == [201, 201], [r.body for r in added]
    assert [r.json()["name"] for r in added] == ["node2", "node3"]
    nodes = eventually(
        lambda: running_nodes(stack, session),
        "node1, node2 and node3 running",
        timeout=60,
        until=lambda found: set(found) == {"node1", "node2", "node3"},
    )
    assert all(n["address"] for n in nodes.values()), nodes
    ids = sandbox_ids(stack, session)
    sandboxes = on_host(stack)
    assert {name: sandboxes[ids[name]]["hostname"] for name in ids} == {n: n for n in ids}, sandboxes
    for name in ("node2", "node3"):
        assert asyncio.run(in_node(stack, session, name, "hostname")).strip() == name

    served = "echo hello from node3 > /tmp/hi.txt && httpd -p 7000 -h /tmp && echo serving"
    assert asyncio.run(in_node(stack, session, "node3", served)).strip() == "serving"
    # nc, not busybox's wget, which crashes resolving a name from /etc/hosts (a static binary's NSS).
    request = r"printf 'GET /hi.txt HTTP/1.0\r\n\r\n' | nc node3 7000"
    fetched = asyncio.run(in_node(stack, session, "node1", request))
    assert fetched.splitlines()[-1] == "hello from node3", f"node1 could not reach node3 by name: {fetched!r}"

    assert nodes_api(stack, "DELETE", session, "node2").status == 204
    eventually(lambda: ids["node2"] not in on_host(stack), "node2's sandbox destroyed", timeout=30)
    assert ids["node1"] in on_host(stack) and ids["node3"] in on_host(stack)
    assert asyncio.run(in_node(stack, session, "node1", "echo still here")).strip() == "still here"
    assert stack.shown(session)["state"] == "active"

    stack.end_session(session)
    eventually(
        lambda: not set(ids.values()) & set(on_host(stack)),
        "every node's sandbox destroyed with the session",
        timeout=30,
    )


def test_node1_pings_node2_by_name(stack: Stack) -> None:
    """In the docker image, whose sandboxes have CAP_NET_RAW as Docker's containers do (ping needs
    it; other images' sandboxes lack it), with its own ping (iputils-ping)."""
    build_docker_image(stack)
    session = stack.start_session(image="docker")
    assert nodes_api(stack, "POST", session).status == 201
    eventually(lambda: running_nodes(stack, session), "node1 and node2 running", 60, until=lambda f: len(f) == 2)
    pinged = asyncio.run(in_node(stack, session, "node1", "ping -c1 -W3 node2 >/dev/null && echo reached"))
    assert pinged.strip() == "reached", f"node1 could not ping node2: {pinged!r}"
    stack.end_session(session)


def test_a_viewer_that_missed_the_removal_event_is_told_the_node_was_removed_when_its_sandbox_goes(
    stack: Stack,
) -> None:
    """The removal's event reaches only viewers already in the node's event group; one that joins
    just after it (the prompt comes before the groups are joined) learns it from its terminal's
    end. Played here without the event: the node is marked removing as the API does, and the agent
    destroys its sandbox; the viewer gets ``exit`` ``node_removed`` and the close 1000."""
    session = stack.start_session()
    node2 = nodes_api(stack, "POST", session).json()

    async def watch() -> tuple[dict[str, Any], int | None]:
        viewer = await Terminal.open(stack.terminal_url({**session, "instances": [node2]}))
        try:
            await viewer.expect("# ", timeout=30)
            with sqlite3.connect(stack.data_dir / "web" / "db.sqlite3", timeout=20) as db:
                db.execute(
                    "UPDATE sandboxes_instance SET state = 'removing' WHERE session_id = ? AND name = 'node2'",
                    (uuid.UUID(session["id"]).hex,),
                )
            agent = AgentClient(stack.data_dir / "run" / "agent.sock")
            await asyncio.to_thread(agent.call, "destroy", id=sandbox_ids(stack, session)["node2"])
            event = await viewer.expect_event("exit", timeout=10)
            return event, await viewer.closed(timeout=10)
        finally:
            await viewer.close()

    event, code = asyncio.run(watch())
    assert (event["reason"], event["node"], code) == ("node_removed", "node2", 1000), (event, code)
    stack.end_started_sessions()
