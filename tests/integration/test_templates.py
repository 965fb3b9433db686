"""Session templates on a real stack (docs/templates.md): a template's nodes start as sandboxes and
each one's setup runs inside it, in order, with the values of the ones before."""

from __future__ import annotations

import asyncio
import functools
import re
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.dockerkit import build_docker_image, run
from tests.imagekit import CACHE
from tests.integration.test_nodes import in_node, sandbox_ids
from tests.integration.test_ports import fetch
from tests.stack import REPO, Stack
from tests.waiting import eventually

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = pytest.mark.alongside

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
    stack = Stack.create(PLAYGROUND_IMAGE_CACHE=str(CACHE))  # the docker image's build cache, for the swarm
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


# A web server image built in each node (no registry): busybox's httpd serving the container's hostname.
WEB_IMAGE = (
    "mkdir -p /root/web && cd /root/web && printf '%s\\n' 'FROM busybox' "
    '\'CMD ["sh", "-c", "mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www"]\' '
    "> Dockerfile && docker build -q -t web . >/dev/null && echo built"
)


@pytest.fixture(scope="module")
def swarm(templates_stack: Stack) -> tuple[dict[str, Any], dict[str, str]]:
    """A session of the ``swarm-3m2w`` template whose setup is done, with the web image in every
    node: the session and each node's address by name."""
    build_docker_image(templates_stack)
    session = templates_stack.start_session(template="swarm-3m2w")
    setup = finished_setup(templates_stack, session, 300)
    assert setup["state"] == "done", f"{setup['message']}\n{setup['log']}"
    ids = sandbox_ids(templates_stack, session)
    for name, sandbox_id in sorted(ids.items()):
        built = asyncio.run(run(templates_stack, sandbox_id, WEB_IMAGE, 120))
        assert built["output"].strip() == "built", (name, built)
    response = templates_stack.request(
        "GET", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
    )
    addresses = {node["name"]: node["address"] for node in response.json()["instances"]}
    return session, addresses


# What a failed wait on a service prints: its tasks with their states and errors, and the nodes.
SERVICE_STATE = (
    "docker service ps {service} --no-trunc "
    "--format '{{{{.Node}}}} {{{{.DesiredState}}}} {{{{.CurrentState}}}} {{{{.Error}}}}'; "
    "docker node ls --format '{{{{.Hostname}}}} {{{{.Status}}}} {{{{.Availability}}}} {{{{.ManagerStatus}}}}'"
)


def from_node1(stack: Stack, session: dict[str, Any], script: str, timeout: float = 60) -> str:
    sandbox_id = sandbox_ids(stack, session)["node1"]
    reply = asyncio.run(run(stack, sandbox_id, script, timeout))
    return str(reply["output"])


def create_service(stack: Stack, session: dict[str, Any], name: str, arguments: str) -> str:
    """``docker service create -d -q --name <name> <arguments>`` on node1; the service's id.

    A busy host can make the managers miss the create's deadline (``context deadline exceeded``)
    although the service may exist after all; then its id is looked up, and the create tried again
    if it does not (three tries)."""
    lookup = f"docker service inspect --format '{{{{.ID}}}}' {name} 2>/dev/null"
    outputs = []
    for _ in range(3):
        outputs.append(from_node1(stack, session, f"docker service create -d -q --name {name} {arguments} 2>&1"))
        ids = [line for line in outputs[-1].split() if re.fullmatch(r"[0-9a-z]{25}", line)]
        if ids:  # the id, after a warning that the image has no digest in a registry
            return ids[-1]
        found = from_node1(stack, session, lookup).strip()
        if found:
            return found
    raise AssertionError(f"docker service create {name} failed three times: {outputs}")


def create_network(stack: Stack, session: dict[str, Any], name: str, arguments: str) -> None:
    """``docker network create <arguments> <name>`` on node1, tried again (three tries) while the
    network is not there: on a busy host the managers can miss the create's deadline, as for a
    service (a full run's later ``service create`` then read ``No such network``)."""
    outputs = []
    for _ in range(3):
        outputs.append(from_node1(stack, session, f"docker network create {arguments} {name} 2>&1"))
        if from_node1(stack, session, f"docker network inspect --format ok {name} 2>/dev/null").strip() == "ok":
            return
    raise AssertionError(f"docker network create {name} failed three times: {outputs}")


def answers(stack: Stack, session: dict[str, Any], addresses: dict[str, str], port: int) -> dict[str, str]:
    """What each node's address answers on ``port``, fetched from node1 (empty: nothing)."""
    script = "; ".join(f"echo {name}=$(curl -s -m 3 http://{address}:{port}/)" for name, address in addresses.items())
    lines = from_node1(stack, session, script).splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def port_of(stack: Stack, session: dict[str, Any], name: str, port: int) -> dict[str, Any]:
    """Node ``name``'s port JSON (its links, and whether the agent sees it listening)."""
    path = f"/api/sessions/{session['id']}/instances/{name}/ports/{port}/"
    response = stack.request("GET", path, headers={"Authorization": f"Session {session['key']}"})
    assert response.status == 200, response.body
    return dict(response.json())


def test_the_swarm_template_gives_five_ready_nodes_and_a_host_published_service_answers_on_every_node(
    templates_stack: Stack, swarm: tuple[dict[str, Any], dict[str, str]]
) -> None:
    session, addresses = swarm

    def nodes() -> list[list[str]]:
        listed = from_node1(
            templates_stack, session, "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'"
        )
        return sorted(line.split() for line in listed.splitlines())

    # Three managers, one of them the leader, and two workers, all Ready. Under a loaded host the
    # managers may elect another leader, and a node reads Unknown until its next heartbeat arrives.
    eventually(
        nodes,
        "five Ready nodes: three managers (one the leader), two workers",
        60,
        until=lambda found: (
            [node[:2] for node in found] == [[f"node{i}", "Ready"] for i in range(1, 6)]
            and sorted(node[2] for node in found[:3] if len(node) == 3) == ["Leader", "Reachable", "Reachable"]
            and all(len(node) == 2 for node in found[3:])
        ),
    )
    create_service(
        templates_stack,
        session,
        "everywhere",
        "--mode global --publish mode=host,published=8080,target=80 web",
    )
    found = eventually(
        lambda: answers(templates_stack, session, addresses, 8080),
        "every node answering on 8080",
        180,
        until=lambda got: len(got) == 5 and all(got.values()),
        explain=lambda: from_node1(templates_stack, session, SERVICE_STATE.format(service="everywhere")),
    )
    assert len(set(found.values())) == 5, found  # five containers, one on each node
    # ... and through each node's port link (path form, the owner's cookie), as the page's badge opens it
    cookie = f"pg_{session['id'].replace('-', '')}={session['key']}"
    for name in addresses:
        links = eventually(
            functools.partial(port_of, templates_stack, session, name, 8080),
            f"the agent sees 8080 listening on {name}",
            10,
            until=lambda links: bool(links["listening"]),
        )
        status, headers, body = fetch(templates_stack, urlsplit(links["path_url"]).path, headers={"Cookie": cookie})
        assert status == 302, (name, status, body)  # to the link with the owner's pass (docs/ports.md)
        status, _, body = fetch(templates_stack, urlsplit(headers["location"]).path, headers={"Cookie": cookie})
        assert (status, body.decode().strip()) == (200, found[name]), (name, status, body)


@pytest.mark.xfail(
    strict=True,
    reason="the routing mesh needs IPVS, which this kernel lacks and which needs CAP_NET_ADMIN in the host's "
    "user namespace (docs/swarm.md); if this passes, the mesh works: update docs/swarm.md and drop this mark",
)
def test_a_replicated_service_published_through_the_routing_mesh_answers_on_every_node(
    templates_stack: Stack, swarm: tuple[dict[str, Any], dict[str, str]]
) -> None:
    session, addresses = swarm
    create_service(templates_stack, session, "mesh", "--replicas 3 -p 80:80 web")
    eventually(
        lambda: from_node1(templates_stack, session, "docker service ls --filter name=mesh --format '{{.Replicas}}'"),
        "the mesh service's 3 replicas running",
        120,
        until=lambda replicas: replicas.strip() == "3/3",
    )
    found = answers(templates_stack, session, addresses, 80)
    assert len(found) == 5 and all(found.values()), found


def test_containers_on_an_overlay_network_reach_each_other_across_the_nodes(
    templates_stack: Stack, swarm: tuple[dict[str, Any], dict[str, str]]
) -> None:
    """One task per node on an overlay network; a container on node1 fetches from each by its
    overlay address: four of them through VXLAN between the nodes (UDP 4789 on the private network)."""
    session, _ = swarm
    create_network(templates_stack, session, "spread-net", "-d overlay --attachable")
    create_service(templates_stack, session, "spread", "--mode global --network spread-net --endpoint-mode dnsrr web")
    tasks = "docker service ps -q --filter desired-state=running spread"
    inspect = "docker inspect --format '{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}'"
    addresses_script = f"for task in $({tasks}); do {inspect} $task; done"

    def overlay_addresses() -> list[str]:
        words = from_node1(templates_stack, session, addresses_script).split()
        return sorted({word.split("/")[0] for word in words if word.startswith("10.")})

    found = eventually(overlay_addresses, "five tasks with overlay addresses", 120, until=lambda got: len(got) == 5)
    # nc, not busybox's wget, which crashes in the inner busybox image (test_nodes.py says the same)
    request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n'"
    fetches = "; ".join(f"{request} | nc -w 3 {address} 80 | tail -1" for address in found)
    fetch_all = f'docker run --rm --network spread-net busybox sh -c "{fetches}"'
    # A task is listed with its address as it starts: its web server may answer a moment later.
    eventually(
        lambda: from_node1(templates_stack, session, fetch_all, 90),
        "five containers answering, one on each node",
        60,
        until=lambda served: len(set(served.split())) == 5 and "nc:" not in served,
    )
