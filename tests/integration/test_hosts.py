"""Sandbox hosts of their own behind one site (docs/hosts.md): a sandbox host (tests/hostkit.py, the
launcher's sandbox-host role in a network namespace with its own address on a test bridge) and a
site (a whole stack, its own agent beside), the site reaching the host's agent over mutual TLS.

The site's own machine has room for 3 sandboxes, the sandbox host for 4, so placement by room is
seen in the order sessions go: the host (4 > 3), this machine (3 = 3: a tie goes to it), the host."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.host import cgroups
from sandbox.wire.protocol import Kind
from tests.hostkit import AGENT_PORT, SandboxHost, sandbox_host
from tests.stack import Stack, Terminal
from tests.visitors import database
from tests.waiting import eventually, eventually_async

HOST = "sandbox-1"


@pytest.fixture(scope="module")
def host() -> Iterator[SandboxHost]:
    with sandbox_host(HOST, PLAYGROUND_HOST_MAX_SANDBOXES="4") as running:
        yield running


@pytest.fixture(scope="module")
def site(host: SandboxHost) -> Iterator[Stack]:
    settings = {"PLAYGROUND_HOST_MAX_SANDBOXES": "3", "PLAYGROUND_REAPER_INTERVAL": "1"}
    with Stack.running(PLAYGROUND_TLS_DIR=str(host.site_dir), PLAYGROUND_HOST_LOST_AFTER="4", **settings) as stack:
        added = stack.manage("hosts", "add", HOST, str(host.address))  # as docs/hosts.md says
        assert "it answers, room for 4 sandboxes" in added
        yield stack


@pytest.fixture
async def sandbox(host: SandboxHost) -> AsyncIterator[str]:
    """A busybox sandbox on the sandbox host, made and destroyed by the site's client over TLS."""
    sandbox_id = uuid.uuid4().hex
    await host.agent.request("create", id=sandbox_id, hostname="node1", image="busybox")
    try:
        yield sandbox_id
    finally:
        await host.agent.request("destroy", id=sandbox_id)


def placed_on(stack: Stack, session: dict[str, Any]) -> str | None:
    """The name of the sandbox host the session's nodes run on; None for the site's own machine."""
    with database(stack) as db:
        row = db.execute(
            "SELECT h.name FROM sandboxes_session s LEFT JOIN hosts_sandboxhost h ON h.id = s.host_id WHERE s.id = ?",
            (session["id"].replace("-", ""),),
        ).fetchone()
    return row[0]


def settled(stack: Stack) -> None:
    """Wait until no node of an earlier test is live, so that placement sees every host empty."""

    def live() -> int:
        with database(stack) as db:
            states = ("requested", "provisioning", "running", "removing")
            return int(db.execute(f"SELECT COUNT(*) FROM sandboxes_instance WHERE state IN {states}").fetchone()[0])

    eventually(lambda: live() == 0, "no live node left from earlier tests", 30)


def sandbox_of(stack: Stack, session: dict[str, Any]) -> str:
    with database(stack) as db:
        (instance_id,) = db.execute(
            "SELECT id FROM sandboxes_instance WHERE session_id = ? AND name = 'node1'",
            (session["id"].replace("-", ""),),
        ).fetchone()
    return str(instance_id).replace("-", "")


async def answers(stack: Stack, session: dict[str, Any]) -> None:
    """The session's shell, through the site's websocket, runs a command and shows its output."""
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=60)
        await terminal.type("echo answer-$((6 * 7))\r")
        await terminal.expect("answer-42", timeout=10)
    finally:
        await terminal.close()


async def remote_sandboxes(host: SandboxHost) -> set[str]:
    return {s["id"] for s in (await host.agent.request("list"))["sandboxes"]}


def test_a_sandbox_host_runs_the_keeper_and_the_agent_alone(host: SandboxHost) -> None:
    parts = {line.split("]")[0] + "]" for line in host.log_tail().splitlines() if line.startswith("[")}
    assert {"[keeper]", "[agent]"} <= parts
    assert not parts & {"[redis]", "[daphne]", "[worker]", "[beat]", "[ports]", "[registry]"}


async def test_the_sites_client_gets_a_working_shell_on_a_sandbox_host(host: SandboxHost, sandbox: str) -> None:
    stream = await host.agent.attach(sandbox, wait=30)
    try:
        await stream.send(Kind.DATA, b"echo from-$(hostname)-$((6 * 7))\n")
        seen = b""
        while b"from-node1-42" not in seen:
            frame = await asyncio.wait_for(stream.read(), 10)
            assert frame is not None, f"the stream ended after {seen!r}"
            seen += frame[1] if frame[0] == Kind.DATA else b""
    finally:
        await stream.close()
    assert any(d.exists() for d in cgroups.sandbox_dirs(host.cgroup_parent, sandbox))  # on that host


async def test_a_sandbox_cannot_reach_the_agent_of_its_own_host(host: SandboxHost, sandbox: str) -> None:
    probe = f"nc -w 2 {host.address.host} {AGENT_PORT} </dev/null && echo reached || echo refused"
    ran = await host.agent.request("run", sandbox=sandbox, script=probe, timeout=10, limit=1024)
    assert ran["output"].strip().splitlines()[-1] == "refused"


async def test_the_site_places_sessions_by_room_and_each_shell_answers_wherever_it_runs(
    site: Stack, host: SandboxHost
) -> None:
    settled(site)
    sessions = [site.start_session(image="busybox") for _ in range(3)]
    assert [placed_on(site, s) for s in sessions] == [HOST, None, HOST]
    for session in sessions:
        await answers(site, session)
    on_host = await remote_sandboxes(host)
    assert {sandbox_of(site, sessions[0]), sandbox_of(site, sessions[2])} <= on_host
    assert sandbox_of(site, sessions[1]) not in on_host
    # A node added to a session goes where its session is, on the same private network.
    headers = {"Authorization": f"Session {sessions[0]['key']}"}
    added = site.request("POST", f"/api/sessions/{sessions[0]['id']}/instances/", {}, headers=headers)
    assert added.status == 201, added.body

    def node2_running() -> bool:
        listed = site.request("GET", f"/api/sessions/{sessions[0]['id']}/instances/", headers=headers).json()
        return any(n["name"] == "node2" and n["state"] == "running" for n in listed["instances"])

    eventually(node2_running, "node2 running", 30)
    terminal = await Terminal.open(site.terminal_url(sessions[0]))
    try:
        await terminal.expect("# ", timeout=30)
        # A closed port of node2 answers with a reset (walls would drop it: a timeout): node2 is reachable.
        reached = await terminal.run("nc -w 3 node2 1 </dev/null", timeout=20)
        assert "refused" in reached.lower(), reached
    finally:
        await terminal.close()
    assert len({s for s in await remote_sandboxes(host)} - on_host) == 1  # node2, on the sandbox host
    for session in sessions:
        site.end_session(session)
    gone = {sandbox_of(site, sessions[0]), sandbox_of(site, sessions[2])}

    async def destroyed() -> bool:
        return not gone & await remote_sandboxes(host)

    await eventually_async(destroyed, f"their sandboxes destroyed on {HOST}", 30)


async def test_a_port_link_of_a_node_on_another_host_opens_through_its_agent(site: Stack, host: SandboxHost) -> None:
    settled(site)
    session = site.start_session(image="busybox")
    assert placed_on(site, session) == HOST
    headers = {"Authorization": f"Session {session['key']}"}
    terminal = await Terminal.open(site.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=30)
        await terminal.run(
            "mkdir -p /www && echo hello-from-$(hostname)-far > /www/index.html && httpd -p 8080 -h /www"
        )
    finally:
        await terminal.close()

    def port(number: int) -> dict[str, Any]:
        response = site.request(
            "GET", f"/api/sessions/{session['id']}/instances/node1/ports/{number}/", headers=headers
        )
        assert response.status == 200, response.body
        return dict(response.json())

    eventually(lambda: port(8080)["listening"], "the host's agent sees port 8080 listening", 10)
    path = urlsplit(port(8080)["path_url"]).path
    owner = f"pg_{session['id'].replace('-', '')}={session['key']}"
    status, location, _ = fetch(site, path, owner)
    assert status == 302
    assert fetch(site, location)[0::2] == (200, b"hello-from-node1-far\n")
    status, location, _ = fetch(site, urlsplit(port(8081)["path_url"]).path, owner)
    assert status == 302
    assert fetch(site, location)[0] == 503  # nothing listens on 8081 there: the page that waits for it
    site.end_session(session)


def fetch(stack: Stack, path: str, cookie: str = "") -> tuple[int, str, bytes]:
    """One GET of the stack's port proxy: status, Location, body."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports_port, timeout=20)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1", **({"Cookie": cookie} if cookie else {})})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()
    finally:
        connection.close()


async def test_a_draining_host_takes_no_new_session_and_keeps_its_own(site: Stack, host: SandboxHost) -> None:
    settled(site)
    kept = site.start_session(image="busybox")
    assert placed_on(site, kept) == HOST
    assert "is draining" in site.manage("hosts", "drain", HOST)
    try:
        newcomer = site.start_session(image="busybox")
        assert placed_on(site, newcomer) is None
        await answers(site, kept)
        listed = site.manage("hosts", "list")
        assert f"{HOST}\t{host.address}\tdraining" in listed and "1 live session(s)" in listed
    finally:
        site.manage("hosts", "resume", HOST)
        site.end_started_sessions()


async def test_a_host_that_stops_answering_ends_its_sessions_alone_and_is_used_again_once_back(
    site: Stack, host: SandboxHost
) -> None:
    settled(site)
    there, here = site.start_session(image="busybox"), site.start_session(image="busybox")
    assert (placed_on(site, there), placed_on(site, here)) == (HOST, None)
    await answers(site, there)
    host.kill()
    eventually(lambda: site.shown(there)["state"] != "active", f"the session on the killed {HOST} ended", 30)
    assert site.shown(there)["ended_reason"] == "host_lost"
    assert site.shown(here)["state"] == "active"
    await answers(site, here)  # the other session's shell keeps answering
    assert f"{HOST}\t{host.address}\tlost" in site.manage("hosts", "list")
    host.start()  # it comes back: its new agent takes what the old one left, the site's reaper the rest
    eventually(lambda: "\tactive\t" in site.manage("hosts", "list"), f"{HOST} taken back", 30)
    again = site.start_session(image="busybox")
    assert placed_on(site, again) == HOST
    await answers(site, again)
    site.end_started_sessions()


def test_stopping_a_sandbox_host_destroys_its_sandboxes_and_leaves_nothing(host: SandboxHost) -> None:
    sandbox_id = uuid.uuid4().hex
    asyncio.run(host.agent.request("create", id=sandbox_id, hostname="node1", image="busybox"))
    assert host.stop() == 0, host.log_tail()
    assert not any(d.exists() for d in cgroups.sandbox_dirs(host.cgroup_parent, sandbox_id))
    links = subprocess.run(["ip", "-n", host.netns, "-o", "link"], capture_output=True, text=True).stdout
    assert [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()] == ["lo", "eth0"]
    tables = subprocess.run(["ip", "netns", "exec", host.netns, "nft", "list", "tables"], capture_output=True)
    assert tables.stdout.strip() == b""
