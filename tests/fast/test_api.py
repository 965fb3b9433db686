"""The HTTP API's answers when things go wrong, through Django's test client and a fake agent.

Every refusal is JSON ``{"error": code, "message": sentence}`` with a 4xx or 503 status (and
Retry-After where waiting helps); no agent failure becomes a 500.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django import Settings

from playground.sandboxes import api, ratelimit
from tests import pgkit
from tests.fakeagent import DyingAgent, FakeAgent, NeverAgent, SlowAgent
from tests.racekit import race

pytestmark = pytest.mark.django_db


def start(client: Client, body: str = "{}") -> HttpResponse:
    return client.post("/api/sessions/", data=body, content_type="application/json")


def session_of(client: Client, started: HttpResponse) -> dict[str, Any]:
    """The session ``started`` created, as GET shows it to its key's holder."""
    body = started.json()
    response = client.get(f"/api/sessions/{body['id']}/", headers={"Authorization": f"Session {body['key']}"})
    assert response.status_code == 200, response.content
    return response.json()


def assert_refused(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """``response`` is the JSON refusal ``code`` with ``status`` and a one-sentence message; its body."""
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert response.status_code == status, body
    assert body["error"] == code, body
    message = body["message"]
    assert message[:1].isupper(), f"not a sentence: {message!r}"
    assert message.endswith("."), f"not a sentence: {message!r}"
    return body


def configure(settings: Settings, **changes: Any) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, **changes)


def test_a_body_that_is_not_json_is_refused_with_400_bad_json(client: Client, agent: FakeAgent) -> None:
    assert_refused(start(client, "{not json"), 400, "bad_json")


def test_a_json_body_that_is_not_an_object_is_refused_with_400_bad_json(client: Client, agent: FakeAgent) -> None:
    assert_refused(start(client, "[1, 2]"), 400, "bad_json")


def test_an_image_the_agent_does_not_have_is_refused_with_400_naming_the_images_it_has(
    client: Client, agent: FakeAgent
) -> None:
    body = assert_refused(start(client, '{"image": "nosuch"}'), 400, "unknown_image")
    assert body["images"] == ["busybox", "debian"]


def test_an_unknown_session_is_404(client: Client) -> None:
    assert_refused(client.get(f"/api/sessions/{uuid.uuid4()}/"), 404, "unknown_session")


def test_a_session_id_that_is_not_one_is_404(client: Client) -> None:
    assert_refused(client.get("/api/sessions/not-a-uuid/"), 404, "unknown_session")


def test_a_session_asked_for_without_its_key_is_403(client: Client, agent: FakeAgent) -> None:
    session = start(client).json()
    client.cookies.clear()  # the start set the key's cookie
    assert_refused(client.get(f"/api/sessions/{session['id']}/"), 403, "forbidden")


def test_a_session_asked_for_with_a_wrong_key_is_403(client: Client, agent: FakeAgent) -> None:
    session = start(client).json()
    client.cookies.clear()
    response = client.get(f"/api/sessions/{session['id']}/", headers={"Authorization": "Session not-the-key"})
    assert_refused(response, 403, "forbidden")


def test_a_session_ended_with_another_sessions_key_is_403_and_goes_on(client: Client, agent: FakeAgent) -> None:
    mine, other = start(client).json(), start(client).json()
    client.cookies.clear()
    response = client.delete(f"/api/sessions/{mine['id']}/", headers={"Authorization": f"Session {other['key']}"})
    assert_refused(response, 403, "forbidden")
    assert len(agent.sandboxes) == 2, "a refused delete destroyed a sandbox"


def test_starting_faster_than_the_start_rate_is_429_with_the_limiters_retry_after(
    client: Client, agent: FakeAgent, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sliding window itself lives in Redis (tests/integration/test_lifecycle.py); here the
    # limiter answers "wait 37 s" and the claim is what the API makes of that.
    configure(settings, limit_exempt=[])
    monkeypatch.setattr(ratelimit, "start_allowed", lambda address, limit, mark: 37)
    response = start(client)
    assert_refused(response, 429, "too_many_starts")
    assert response["Retry-After"] == "37"


def test_a_visitor_at_their_most_sessions_gets_429_with_retry_after(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, limit_exempt=[], max_sessions_per_address=1)
    assert start(client).status_code == 201
    response = start(client)
    assert_refused(response, 429, "too_many_sessions")
    assert response["Retry-After"] == "10"


def test_a_full_site_gets_503_at_capacity_with_retry_after(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, max_sessions=1)
    assert start(client).status_code == 201
    response = start(client)
    assert_refused(response, 503, "at_capacity")
    assert response["Retry-After"] == "30"


@pytest.mark.skipif(not pgkit.wanted(), reason="SQLite's IMMEDIATE transactions take turns (tests/racekit.py)")
@pytest.mark.django_db(transaction=True)
def test_two_starts_racing_for_the_hosts_last_place_get_it_once(
    agent: FakeAgent, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(settings, max_sessions=1)
    assert race(monkeypatch, lambda: start(Client()), lambda: start(Client())) == (201, 503)


def test_starting_with_no_agent_listening_is_503_agent_unavailable_with_retry_after(client: Client) -> None:
    response = start(client)
    assert_refused(response, 503, "agent_unavailable")
    assert response["Retry-After"] == "10"


def test_listing_images_with_no_agent_listening_is_503_agent_unavailable(client: Client) -> None:
    assert_refused(client.get("/api/images/"), 503, "agent_unavailable")


def test_a_session_started_through_a_working_agent_runs_in_the_sandbox_it_made(
    client: Client, agent: FakeAgent
) -> None:
    started = start(client)
    assert started.status_code == 201, started.content
    session = session_of(client, started)
    assert session["instances"][0]["state"] == "running", session
    assert agent.ops().count("create") == 1, agent.ops()


def test_a_session_on_a_slow_agent_starts_once_the_agent_answers(client: Client, settings: Settings) -> None:
    with SlowAgent.running(settings.PLAYGROUND.agent_socket):
        began = time.monotonic()
        started = start(client)
        took = time.monotonic() - began
    assert started.status_code == 201, started.content
    assert took >= SlowAgent.CREATE_SECONDS, f"the create was not waited for ({took:.2f} s)"
    assert session_of(client, started)["instances"][0]["state"] == "running"


@pytest.mark.parametrize("kind", [DyingAgent, NeverAgent], ids=["dying", "never-answering"])
@pytest.mark.usefixtures("quick_give_up")
def test_a_session_whose_agent_fails_to_create_ends_as_failed_in_json(
    client: Client, settings: Settings, kind: type[FakeAgent]
) -> None:
    with kind.running(settings.PLAYGROUND.agent_socket) as failing:
        started = start(client)
        assert started.status_code == 201, started.content
        session = session_of(client, started)
    assert failing.ops().count("create") >= 2, "the worker did not ask again while the agent did not answer"
    assert session["state"] == "ended", session
    assert session["ended_reason"] == "failed", session


def test_ending_a_session_destroys_its_sandbox_at_the_agent(client: Client, agent: FakeAgent) -> None:
    started = start(client).json()
    response = client.delete(f"/api/sessions/{started['id']}/", headers={"Authorization": f"Session {started['key']}"})
    assert response.status_code == 204, response.content
    assert agent.sandboxes == {}, "the sandbox is still on the agent"


def test_a_sessions_json_shows_the_images_limits_as_last_told_without_asking_the_agent_again(
    client: Client, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = start(client)  # the start asks the agent for its images
    asked = agent.ops().count("images")
    assert asked >= 1
    monkeypatch.setattr(api, "IMAGES_CACHE_SECONDS", 0.0)  # what the start was told is now old
    first = session_of(client, started)
    assert session_of(client, started)["limits"] == first["limits"]
    assert agent.ops().count("images") == asked  # a busy agent would have held every page's poll
    monkeypatch.setattr(api, "_images_cache", (0.0, [], "", {}))  # a web process told nothing yet asks
    assert session_of(client, started)["limits"] == first["limits"]
    assert agent.ops().count("images") == asked + 1
