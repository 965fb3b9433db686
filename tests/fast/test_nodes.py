"""A session's nodes through the API (``/api/sessions/<id>/instances/``) against a fake agent:
adding, listing and removing nodes, their limits, names, and every refusal."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.sandboxes import tasks
from playground.sandboxes.models import Instance, Session
from sandbox.wire.protocol import AgentError
from tests.fakeagent import AT_CAPACITY, FakeAgent
from tests.fast.test_api import assert_refused, start
from tests.fast.test_terminal import close_code, connected, next_event, viewers_disconnected  # noqa: F401

pytestmark = pytest.mark.django_db


class Visitor:
    """A started session and its key, with the requests of the nodes API."""

    def __init__(self, client: Client) -> None:
        started = start(client)
        assert started.status_code == 201, started.content
        body = started.json()
        self.client, self.id, self.key = client, body["id"], body["key"]
        self.auth = {"Authorization": f"Session {self.key}"}

    @property
    def url(self) -> str:
        return f"/api/sessions/{self.id}/instances/"

    def add(self, body: str = "{}") -> HttpResponse:
        return self.client.post(self.url, data=body, content_type="application/json", headers=self.auth)

    def remove(self, name: str) -> HttpResponse:
        return self.client.delete(f"{self.url}{name}/", headers=self.auth)

    def nodes(self) -> list[dict[str, Any]]:
        response = self.client.get(self.url, headers=self.auth)
        assert response.status_code == 200, response.content
        return list(response.json()["instances"])

    def session(self) -> dict[str, Any]:
        response = self.client.get(f"/api/sessions/{self.id}/", headers=self.auth)
        assert response.status_code == 200, response.content
        return dict(response.json())

    def instance(self, name: str) -> Instance:
        return Instance.objects.get(session_id=self.id, name=name)


@pytest.fixture
def visitor(client: Client, agent: FakeAgent) -> Visitor:
    return Visitor(client)


def configure(settings: Settings, **changes: Any) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, **changes)


def test_an_added_node_is_201_node2_running_in_the_sessions_group_with_its_address(
    visitor: Visitor, agent: FakeAgent
) -> None:
    response = visitor.add()
    assert response.status_code == 201, response.content
    node = response.json()
    assert node["name"] == "node2" and node["image"] == "busybox", node
    assert response["Location"] == f"{visitor.url}node2/"
    create = [r for r in agent.requests if r["op"] == "create"][-1]
    assert create["hostname"] == "node2" and create["group"] == visitor.session()["id"].replace("-", ""), create
    listed = {n["name"]: n for n in visitor.session()["instances"]}
    assert listed["node2"]["state"] == "running", listed
    assert listed["node2"]["address"] == agent.sandboxes[visitor.instance("node2").sandbox_id].address
    assert set(listed["node2"]) == {"name", "state", "image", "address", "terminal", "created_at"}


def test_an_added_node_takes_the_image_the_body_names(visitor: Visitor, agent: FakeAgent) -> None:
    node = visitor.add('{"image": "debian"}').json()
    assert node["image"] == "debian", node
    assert agent.sandboxes[visitor.instance("node2").sandbox_id].image == "debian"


@pytest.mark.parametrize(
    ("body", "code"),
    [('{"image": "nosuch"}', "unknown_image"), ("{oops", "bad_json"), ('{"size": 3}', "unknown_field")],
    ids=["unknown-image", "not-json", "unknown-field"],
)
def test_a_bad_add_is_400_with_a_sentence_and_adds_nothing(visitor: Visitor, body: str, code: str) -> None:
    assert_refused(visitor.add(body), 400, code)
    assert [n["name"] for n in visitor.nodes()] == ["node1"]


def test_nodes_of_a_session_asked_for_without_its_key_are_403(visitor: Visitor) -> None:
    visitor.client.cookies.clear()
    assert_refused(visitor.client.get(visitor.url), 403, "forbidden")
    assert_refused(visitor.client.post(visitor.url), 403, "forbidden")
    assert_refused(visitor.client.delete(f"{visitor.url}node1/"), 403, "forbidden")


def test_nodes_of_a_session_that_is_not_one_are_404(client: Client) -> None:
    assert_refused(client.get("/api/sessions/not-a-uuid/instances/"), 404, "unknown_session")


def test_a_node_limit_of_two_refuses_the_third_with_409_and_the_limit_in_words(
    visitor: Visitor, settings: Settings
) -> None:
    configure(settings, max_nodes=2)
    assert visitor.add().status_code == 201
    body = assert_refused(visitor.add(), 409, "too_many_nodes")
    assert "2 nodes" in body["message"] and body["limit"] == 2, body


def test_the_hosts_cap_counts_nodes_so_a_full_host_refuses_nodes_and_sessions_with_503(
    visitor: Visitor, client: Client, settings: Settings
) -> None:
    configure(settings, max_sessions=2)
    assert visitor.add().status_code == 201
    response = visitor.add()
    assert_refused(response, 503, "at_capacity")
    assert response["Retry-After"] == "30"
    assert_refused(start(client), 503, "at_capacity")


def test_node_names_are_never_reused_within_a_session(visitor: Visitor) -> None:
    assert visitor.add().json()["name"] == "node2"
    assert visitor.add().json()["name"] == "node3"
    assert visitor.remove("node3").status_code == 204
    assert visitor.add().json()["name"] == "node4"


def test_a_removed_node_is_204_destroyed_at_the_agent_and_gone_from_the_list(
    visitor: Visitor, agent: FakeAgent
) -> None:
    visitor.add()
    sandbox_id = visitor.instance("node2").sandbox_id
    assert visitor.remove("node2").status_code == 204
    assert sandbox_id not in agent.sandboxes, "the removed node's sandbox is still on the agent"
    assert [n["name"] for n in visitor.nodes()] == ["node1"]
    assert visitor.session()["state"] == "active"
    assert visitor.remove("node2").status_code == 204, "removing twice is not 204"


def test_the_last_node_is_not_removed_409_last_node(visitor: Visitor) -> None:
    body = assert_refused(visitor.remove("node1"), 409, "last_node")
    assert "end the session instead" in body["message"], body


def test_node1_may_go_while_node2_stays_and_then_node2_is_the_last(visitor: Visitor) -> None:
    visitor.add()
    assert visitor.remove("node1").status_code == 204
    assert_refused(visitor.remove("node2"), 409, "last_node")


def test_removing_a_node_the_session_does_not_have_is_404(visitor: Visitor) -> None:
    assert_refused(visitor.remove("node9"), 404, "unknown_instance")


def test_an_ended_session_refuses_a_new_node_with_409_and_removal_is_a_quiet_204(visitor: Visitor) -> None:
    visitor.add()
    assert visitor.client.delete(f"/api/sessions/{visitor.id}/", headers=visitor.auth).status_code == 204
    assert_refused(visitor.add(), 409, "session_ended")
    assert visitor.remove("node2").status_code == 204


def test_ending_a_session_destroys_every_node_however_added(visitor: Visitor, agent: FakeAgent) -> None:
    visitor.add()
    visitor.add('{"image": "debian"}')
    assert len(agent.sandboxes) == 3
    visitor.client.delete(f"/api/sessions/{visitor.id}/", headers=visitor.auth)
    assert agent.sandboxes == {}, agent.sandboxes
    assert {n["state"] for n in visitor.session()["instances"]} == {"destroyed"}


def test_the_list_has_each_nodes_stats_and_its_listening_and_configured_ports(
    visitor: Visitor, agent: FakeAgent
) -> None:
    node1 = visitor.instance("node1")
    agent.sandboxes[node1.sandbox_id].ports = [8080]
    Instance.objects.filter(pk=node1.pk).update(port_options={"3000": {"shared": True}})
    [listed] = visitor.nodes()
    assert listed["stats"] == {"memory_bytes": 8 << 20, "memory_limit_bytes": 512 << 20, "cpu_seconds": 0.25}
    ports = {p["port"]: p for p in listed["ports"]}
    assert sorted(ports) == [3000, 8080], ports
    assert ports[8080]["listening"] and not ports[8080]["shared"], ports
    assert not ports[3000]["listening"] and ports[3000]["shared"], ports
    assert ports[8080]["open_url"].endswith("/instances/node1/ports/8080/open/"), ports


def test_the_list_without_an_agent_is_200_with_null_stats_and_configured_ports_only(
    client: Client, settings: Settings
) -> None:
    with FakeAgent.running(settings.PLAYGROUND.agent_socket):
        visitor = Visitor(client)
    Instance.objects.filter(session_id=visitor.id).update(port_options={"3000": {"https": True}})
    [listed] = visitor.nodes()
    assert listed["stats"] is None, listed
    assert [(p["port"], p["listening"], p["https"]) for p in listed["ports"]] == [(3000, False, True)]


def test_a_node_added_beside_a_working_one_that_fails_fails_alone(
    visitor: Visitor, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(request: dict[str, Any]) -> dict[str, Any]:
        raise AgentError("at_capacity", AT_CAPACITY)

    monkeypatch.setattr(agent, "op_create", refuse)
    assert visitor.add().status_code == 201
    states = {n["name"]: n["state"] for n in visitor.session()["instances"]}
    assert states == {"node1": "running", "node2": "failed"}, states
    assert visitor.session()["state"] == "active"
    assert agent.ops()[-1] == "destroy", "what the failed create left was not destroyed"


def test_a_removed_nodes_terminals_are_409_node_removed(visitor: Visitor) -> None:
    visitor.add()
    visitor.remove("node2")
    response = visitor.client.get(f"{visitor.url}node2/terminals/", headers=visitor.auth)
    assert_refused(response, 409, "node_removed")


def test_a_removing_node_missing_from_the_agent_does_not_end_its_session(visitor: Visitor, agent: FakeAgent) -> None:
    visitor.add()
    node2 = visitor.instance("node2")
    Instance.objects.filter(pk=node2.pk).update(state=Instance.State.REMOVING)
    agent.sandboxes.pop(node2.sandbox_id)
    tasks._reconcile_with_agents(timezone.now() + timedelta(minutes=1))
    assert visitor.session()["state"] == "active"


def test_a_running_added_node_missing_from_the_agent_ends_its_session_as_host_lost(
    visitor: Visitor, agent: FakeAgent
) -> None:
    visitor.add()
    agent.sandboxes.pop(visitor.instance("node2").sandbox_id)
    tasks._reconcile_with_agents(timezone.now() + timedelta(minutes=1))
    assert visitor.session()["ended_reason"] == "host_lost"


def test_a_node_added_just_before_its_session_ended_is_destroyed_with_it(visitor: Visitor, agent: FakeAgent) -> None:
    session = Session.objects.get(pk=visitor.id)
    late = Instance.objects.create(session=session, name="node2", image="busybox")  # committed before the end
    assert tasks.end_session(session.pk, "deleted")
    tasks.provision_instance(str(late.pk))  # its task arrives after the end: it makes nothing
    late.refresh_from_db()
    assert late.state == Instance.State.DESTROYED and agent.sandboxes == {}, (late.state, agent.sandboxes)


def concurrently(count: int, request: Callable[[], HttpResponse]) -> list[int]:
    """The statuses of ``count`` calls of ``request`` made at once from as many threads."""
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        try:
            barrier.wait()
            statuses.append(request().status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(statuses)


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_exceed_the_node_limit(client: Client, agent: FakeAgent, settings: Settings) -> None:
    configure(settings, max_nodes=3)
    visitor = Visitor(client)
    statuses = concurrently(8, lambda: Visitor.add(visitor_in(visitor)))
    assert statuses == [201, 201] + [409] * 6, statuses
    assert len(visitor.nodes()) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_exceed_the_hosts_cap(client: Client, agent: FakeAgent, settings: Settings) -> None:
    configure(settings, max_sessions=4)
    visitors = [Visitor(client) for _ in range(2)]
    statuses = concurrently(8, lambda: Visitor.add(visitor_in(visitors[threading.get_ident() % 2])))
    assert statuses == [201, 201] + [503] * 6, statuses
    assert Instance.objects.filter(state__in=Instance.LIVE_STATES).count() == 4


def visitor_in(visitor: Visitor) -> Visitor:
    """``visitor`` with a client of its own (a test client is not shared between threads)."""
    own = object.__new__(Visitor)
    own.__dict__.update(visitor.__dict__, client=Client())
    return own


@pytest.mark.django_db(transaction=True)
async def test_a_removed_nodes_viewer_gets_exit_with_a_sentence_and_a_final_close(
    client: Client, agent: FakeAgent
) -> None:
    visitor = await sync_to_async(Visitor)(client)
    await sync_to_async(visitor.add)()
    communicator = await connected(f"/ws/sessions/{visitor.id.replace('-', '')}/node2/?key={visitor.key}")
    assert (await next_event(communicator, "status"))["state"] == "running"
    assert (await sync_to_async(visitor.remove)("node2")).status_code == 204
    event = await next_event(communicator, "exit")
    assert event["reason"] == "node_removed" and event["message"].startswith("node2 was removed"), event
    assert await close_code(communicator) == 1000


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_of_a_removed_node_is_told_so_at_connect(client: Client, agent: FakeAgent) -> None:
    visitor = await sync_to_async(Visitor)(client)
    await sync_to_async(visitor.add)()
    await sync_to_async(visitor.remove)("node2")
    communicator = await connected(f"/ws/sessions/{visitor.id.replace('-', '')}/node2/?key={visitor.key}")
    assert (await next_event(communicator, "exit"))["reason"] == "node_removed"
    assert await close_code(communicator) == 1000
