"""Sandbox hosts of their own behind one site (docs/hosts.md): three sandbox hosts (tests/hostkit.py:
set up as docs/hosts.md says, with the unit's command and the environment file's settings, each in a
network namespace of its own with its own address on one test bridge) and a site (a whole stack, its
own agent beside), reaching the hosts' agents over mutual TLS.

The site's own machine has room for 3 sandboxes, each sandbox host for 4, so placement by room is
seen in the order sessions go: sandbox-1, -2 and -3 (4 > 3), then this machine (3 = 3: a tie goes
to it), then sandbox-1 again."""

from __future__ import annotations

import asyncio
import http.client
import io
import os
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from playground.registry.distribution import writable_registry
from playground.registry.paths import mirror_root
from sandbox.host import cgroups
from sandbox.wire import tls
from sandbox.wire.protocol import Kind
from tests.hostkit import AGENT_PORT, SandboxHost, placed_on, sandbox_hosts
from tests.imagekit import CACHE
from tests.metricskit import scrape, value
from tests.mirrorkit import push, tiny_image
from tests.stack import REPO, Stack, Terminal, free_port
from tests.visitors import database
from tests.waiting import eventually, eventually_async

HOST = "sandbox-1"
HOSTS = ("sandbox-1", "sandbox-2", "sandbox-3")
FARBOX = tiny_image("far-on-sandbox-1")


@pytest.fixture(scope="module")
def pushes_port() -> int:
    """Where the site's registry front serves the sandbox hosts' pushes, on its address on the bridge."""
    return free_port()


@pytest.fixture(scope="module")
def registry_port() -> str:
    """The registry front's port on every host's gateway: one for all, as the session API gives one
    address (registry:<port>) to every session wherever it runs (docs/hosts.md)."""
    return str(free_port())


@pytest.fixture(scope="module")
def hosts(pushes_port: int, registry_port: str) -> Iterator[list[SandboxHost]]:
    settings = {"PLAYGROUND_HOST_MAX_SANDBOXES": "4", "PLAYGROUND_REGISTRY_PORT": registry_port}
    with sandbox_hosts(3, registry_port=pushes_port, **settings) as running:
        yield running


@pytest.fixture(scope="module")
def host(hosts: list[SandboxHost]) -> SandboxHost:
    """sandbox-1, for the tests of one host."""
    return hosts[0]


@pytest.fixture(scope="module")
def site(hosts: list[SandboxHost], pushes_port: int, registry_port: str) -> Iterator[Stack]:
    settings = {"PLAYGROUND_HOST_MAX_SANDBOXES": "3", "PLAYGROUND_REAPER_INTERVAL": "1"}
    settings["PLAYGROUND_REGISTRY_PORT"] = registry_port
    settings["PLAYGROUND_REGISTRY_HOSTS_LISTEN"] = f"{hosts[0].site_address}:{pushes_port}"
    # As 'hostcerts site' leaves the key on a web host whose web user does not exist yet (a first
    # start after the certificates): the launcher gives it to the web user, or no host answers below.
    os.chown(hosts[0].site_dir / "site.key", 0, 0)
    with Stack.running(PLAYGROUND_TLS_DIR=str(hosts[0].site_dir), PLAYGROUND_HOST_LOST_AFTER="4", **settings) as stack:
        for each in hosts:
            added = stack.manage("hosts", "add", each.name, str(each.address))  # as docs/hosts.md says
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


def test_a_sandbox_host_runs_the_keeper_the_agent_and_its_mirror_alone(host: SandboxHost) -> None:
    parts = {line.split("]")[0] + "]" for line in host.log_tail().splitlines() if line.startswith("[")}
    assert {"[keeper]", "[agent]", "[registry]", "[registry-front]"} <= parts  # its own mirror, pulls only
    assert not parts & {"[redis]", "[daphne]", "[worker]", "[beat]", "[ports]", "[registry-push]"}


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
    site: Stack, hosts: list[SandboxHost]
) -> None:
    settled(site)
    sessions = [site.start_session(image="busybox") for _ in range(5)]
    assert [placed_on(site, s) for s in sessions] == ["sandbox-1", "sandbox-2", "sandbox-3", None, "sandbox-1"]
    for session in sessions:
        await answers(site, session)
    on_hosts = [await remote_sandboxes(each) for each in hosts]
    for session, where in zip(sessions, [0, 1, 2, None, 0], strict=True):
        assert [sandbox_of(site, session) in there for there in on_hosts] == [i == where for i in range(3)]
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
    assert len(await remote_sandboxes(hosts[0]) - on_hosts[0]) == 1  # node2, on sandbox-1
    for session in sessions:
        site.end_session(session)

    async def destroyed() -> bool:
        return not any([await remote_sandboxes(each) for each in hosts])

    await eventually_async(destroyed, "their sandboxes destroyed on the sandbox hosts", 30)


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


async def test_files_go_to_and_come_from_a_node_on_another_host_through_the_sites_api(
    site: Stack, host: SandboxHost
) -> None:
    settled(site)
    session = site.start_session(image="busybox")
    assert placed_on(site, session) == HOST
    await answers(site, session)
    headers = {"Authorization": f"Session {session['key']}", "Content-Type": "application/octet-stream"}
    files = f"/api/sessions/{session['id']}/instances/node1/files/?path="
    data = os.urandom(2 * 1024 * 1024 + 5)
    put = site.request("PUT", files + "/root/far.bin", raw=data, headers=headers)
    assert put.status == 201 and put.json() == {"path": "/root/far.bin", "size": len(data)}, put.body
    got = site.request("GET", files + "/root/far.bin", headers=headers)
    assert got.status == 200 and got.body == data
    missing = site.request("PUT", files + "/nowhere/far.bin", raw=data, headers=headers)
    assert missing.status == 404 and missing.json()["error"] == "no_such_file", missing.body
    home = site.request("GET", f"/api/sessions/{session['id']}/home.tar", headers=headers)
    assert home.status == 200, home.body
    with tarfile.open(fileobj=io.BytesIO(home.body)) as tar:
        member = tar.extractfile("./far.bin")
        assert member is not None and member.read() == data
    site.end_session(session)


async def test_a_docker_engine_on_another_host_pulls_through_that_hosts_own_mirror(
    site: Stack, host: SandboxHost
) -> None:
    # The host's mirror seeded as `manage.py registry import` would: an image in its storage.
    with writable_registry(mirror_root(Path(host.env["PLAYGROUND_DATA_DIR"]))) as seeding:
        push(seeding, "library/farbox", "latest", FARBOX)
    for env in (site.env, host.env):  # the site offers the images of its own agent
        built = subprocess.run(
            [sys.executable, "-m", "sandbox.images", "build", "docker", "--if-missing"],
            cwd=REPO,
            env={**env, "PLAYGROUND_IMAGE_CACHE": str(CACHE)},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert built.returncode == 0, built.stdout + built.stderr
    settled(site)
    session = site.start_session(image="docker")
    assert placed_on(site, session) == HOST
    terminal = await Terminal.open(site.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=60)
        await terminal.run("timeout 55 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'", timeout=60)
        pulled = await terminal.run("docker pull farbox && docker run --rm farbox cat /hello.txt", timeout=120)
        assert "far-on-sandbox-1" in pulled, pulled
        # The session registry is the web host's: a push and a pull back go through the site's front.
        auth = {"Authorization": f"Session {session['key']}"}
        registry = site.request("GET", f"/api/sessions/{session['id']}/", headers=auth).json()["registry"]
        image = f"{registry['prefix']}farbox:1"
        pushed = await terminal.run(
            f"docker login -u {registry['user']} -p {registry['password']} {registry['address']} && "
            f"docker tag farbox {image} && docker push {image}; echo pushed=$?",
            timeout=120,
        )
        assert "pushed=0" in pushed, pushed
        back = await terminal.run(f"docker rmi {image} farbox && docker run --rm {image} cat /hello.txt", timeout=120)
        assert "far-on-sandbox-1" in back, back
    finally:
        await terminal.close()
    site.end_session(session)


def test_the_web_hosts_registry_link_for_the_sandbox_hosts_speaks_tls_alone(
    site: Stack, hosts: list[SandboxHost], pushes_port: int
) -> None:
    link = (hosts[0].site_address, pushes_port)
    with socket.create_connection(link, timeout=10) as plain:
        plain.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
        try:
            answer = plain.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer  # no plain HTTP: a sniffer on the link sees no password
    context = tls.authority_context(hosts[0].site_dir / tls.CA_CERT)  # as a sandbox host's front checks it
    with socket.create_connection(link, timeout=10) as raw, context.wrap_socket(raw, server_hostname=link[0]) as tied:
        tied.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n")
        assert tied.recv(100).startswith(b"HTTP/1.1 401 "), "the session registry asks for credentials"
    said = [line for line in hosts[0].log.read_text().splitlines() if "pushes to the web host's front" in line]
    assert said and said[-1].endswith("over TLS"), said  # what the sandbox host's front says it does


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
        newcomers = [site.start_session(image="busybox") for _ in range(2)]
        assert [placed_on(site, s) for s in newcomers] == ["sandbox-2", "sandbox-3"]
        await answers(site, kept)
        listed = site.manage("hosts", "list")
        assert f"{HOST}\t{host.address}\tdraining\t" in listed and "1 live session(s)" in listed
    finally:
        site.manage("hosts", "resume", HOST)
        site.end_started_sessions()


async def test_the_sites_metrics_show_each_sandbox_host_by_its_name(site: Stack, hosts: list[SandboxHost]) -> None:
    settled(site)
    session = site.start_session(image="busybox")
    assert placed_on(site, session) == HOST
    await answers(site, session)
    site.manage("hosts", "drain", HOST)
    try:
        _, samples = scrape(site)
    finally:
        site.manage("hosts", "resume", HOST)
    names = {dict(labels)["host"] for (name, labels) in samples if name == "playground_agent_up"}
    assert names - {"sandbox-1", "sandbox-2", "sandbox-3"} == {socket.gethostname()}  # and this machine's
    for name in names:
        assert value(samples, "playground_agent_up", host=name) == 1
        assert value(samples, "playground_host_sandboxes_limit", host=name) == (3 if name not in HOSTS else 4)
    assert value(samples, "playground_host_sandboxes", host=HOST, kind="session") == 1
    assert value(samples, "playground_host_sandboxes", host="sandbox-2", kind="session") == 0
    assert value(samples, "playground_host_memory_used_bytes", host=HOST) > 0
    assert value(samples, "playground_host_memory_committed_bytes", host=HOST) > 0
    assert value(samples, "playground_host_headroom_sandboxes", host=HOST) == 3
    assert value(samples, "playground_host_state", host=HOST, state="draining") == 1
    assert value(samples, "playground_host_state", host=HOST, state="active") == 0
    assert value(samples, "playground_host_state", host="sandbox-2", state="active") == 1
    site.end_started_sessions()


async def test_a_host_that_stops_answering_ends_its_sessions_alone_and_is_used_again_once_back(
    site: Stack, hosts: list[SandboxHost]
) -> None:
    settled(site)
    sessions = [site.start_session(image="busybox") for _ in range(4)]
    assert [placed_on(site, s) for s in sessions] == ["sandbox-1", "sandbox-2", "sandbox-3", None]
    lost, others = sessions[1], [sessions[0], sessions[2], sessions[3]]
    await answers(site, lost)
    hosts[1].kill()
    eventually(lambda: site.shown(lost)["state"] != "active", "the session on the killed sandbox-2 ended", 30)
    assert site.shown(lost)["ended_reason"] == "host_lost"
    for other in others:  # every other host's session, and this machine's, keeps answering
        assert site.shown(other)["state"] == "active"
        await answers(site, other)
    assert f"sandbox-2\t{hosts[1].address}\tlost\t" in site.manage("hosts", "list")
    _, samples = scrape(site)  # an operator is told (deploy/prometheus/alerts.yml)
    assert value(samples, "playground_agent_up", host="sandbox-2") == 0
    assert value(samples, "playground_host_state", host="sandbox-2", state="lost") == 1
    assert value(samples, "playground_agent_up", host="sandbox-3") == 1
    hosts[1].start()  # it comes back: its new agent takes what the old one left, the site's reaper the rest
    taken_back = f"sandbox-2\t{hosts[1].address}\tactive\t"
    eventually(lambda: taken_back in site.manage("hosts", "list"), "sandbox-2 taken back", 30)
    again = site.start_session(image="busybox")
    assert placed_on(site, again) == "sandbox-2"  # the most room now
    await answers(site, again)
    site.end_started_sessions()


async def test_a_host_that_hangs_holds_only_part_of_the_workers_and_sessions_on_other_hosts_start_meanwhile(
    site: Stack, hosts: list[SandboxHost]
) -> None:
    settled(site)
    for name in HOSTS:
        site.manage("hosts", "drain", name)
    hung = hosts[1]
    try:
        here = [site.start_session(image="busybox") for _ in range(3)]  # this machine full: room for 3
        assert [placed_on(site, s) for s in here] == [None, None, None]
        site.manage("hosts", "resume", hung.name)
        hung.hang()
        # As many creates as the site's worker has processes (PLAYGROUND_WORKER_CONCURRENCY's default),
        # each waiting for an agent that takes connections and never answers.
        stuck = [site.start_session(image="busybox") for _ in range(4)]
        assert {placed_on(site, s) for s in stuck} == {hung.name}
        site.manage("hosts", "drain", hung.name)
        site.manage("hosts", "resume", HOST)
        started = time.monotonic()
        elsewhere = site.start_session(image="busybox")
        assert placed_on(site, elsewhere) == HOST
        await answers(site, elsewhere)
        waited = time.monotonic() - started
        hung.unhang()
        # Without a queue per host and a cap on its tasks, every process of the worker waits for the
        # hung agent (its connect's 5 s timeout, then asked again for AGENT_RESTART_WAIT, 30 s): 27 s
        # here; and without one reaper pass at a time, the passes asking it hold the rest.
        assert waited < 4, f"a session on {HOST} took {waited:.1f} s to answer while {hung.name} hung"
        for session in stuck:  # back within PLAYGROUND_HOST_LOST_AFTER (4 s): none of its tasks was lost
            await answers(site, session)
    finally:
        hung.unhang()
        for name in HOSTS:
            site.manage("hosts", "resume", name)
        site.end_started_sessions()
        taken_back = f"{hung.name}\t{hung.address}\tactive\t"
        eventually(lambda: taken_back in site.manage("hosts", "list"), f"{hung.name} answering again", 60)


async def test_a_worker_started_again_takes_every_hosts_queue_and_their_sessions_start(
    site: Stack, hosts: list[SandboxHost]
) -> None:
    settled(site)
    before = site.log_path.stat().st_size
    site.restart_part("worker")
    eventually(
        lambda: all(
            f"Started consuming from sandboxes.{h.name}".encode() in site.log_path.read_bytes()[before:] for h in hosts
        ),
        "the new worker consuming every sandbox host's queue",
        30,
    )
    session = site.start_session(image="busybox")
    assert placed_on(site, session) == HOST
    await answers(site, session)
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
