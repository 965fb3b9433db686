"""The instructor's actions on a learner and on the class, and the progress CSV (playground/workshops/
actions.py, export.py; docs/workshops.md, Actions and Export), through Django's test client, a fake
agent and, for what reaches a learner's page, the terminal websocket."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.asgi import application
from playground.labs import signals as lab_signals
from playground.labs.models import Lab, Progress, Step
from playground.sandboxes.models import EndReason, Instance, Session
from playground.workshops import actions
from playground.workshops.models import Learner, Workshop
from tests.fakeagent import FakeAgent
from tests.fast.test_terminal import close_code, next_event
from tests.fast.test_workshops import instructor, join, joined_session, workshop

pytestmark = pytest.mark.django_db

TIMEOUT = 5.0


def post(client: Client, path: str, body: object = None) -> HttpResponse:
    data = "" if body is None else json.dumps(body)
    return client.post(path, data, content_type="application/json")


def refused(response: HttpResponse, status: int, code: str) -> str:
    """The sentence of a refused action, after checking its status and code."""
    assert response.status_code == status, response.content.decode()[:2000]
    body = response.json()
    assert body["error"] == code and body["message"], body
    return str(body["message"])


def learner_session(item: Workshop, name: str) -> tuple[Learner, Session, str]:
    """``name`` joins ``item`` from a fresh browser: their learner, session and session key."""
    browser = Client()
    session = joined_session(join(browser, item.join_code, name))
    return Learner.objects.get(session=session), session, browser.cookies[session.cookie_name].value


def lab_workshop(owner: User, steps: int = 3) -> Workshop:
    lab = Lab.objects.create(slug="docker-101", language="ko", title="도커 시작하기", image="busybox")
    for number in range(1, steps + 1):
        Step.objects.create(lab=lab, number=number, title=f"단계 {number}", html="<p>보기</p>")
    return workshop(owner, lab_slug="docker-101", lab_language="ko")


# ---- extend -----------------------------------------------------------------------------------


def test_an_instructor_extends_a_learner_past_the_workshops_end_up_to_the_longest_a_session_may_last(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, session_max_ttl=2 * 3600)
    alice = instructor()
    item = workshop(alice, ends_at=timezone.now() + timedelta(minutes=30))
    learner, session, key = learner_session(item, "Min")
    client.force_login(alice)
    path = f"/workshops/{item.pk}/learners/{learner.pk}/extend/"
    answer = post(client, path, {"minutes": 60})
    assert answer.status_code == 200 and answer.json()["ok"] is True and "Min" in answer.json()["message"]
    session.refresh_from_db()
    assert session.expires_at == item.ends_at + timedelta(minutes=60) == session.ends_by
    assert session.idle_exempt_until == session.expires_at
    assert post(client, path, {"minutes": 240}).status_code == 200
    session.refresh_from_db()
    assert session.expires_at == session.created_at + timedelta(hours=2)  # PLAYGROUND_SESSION_MAX_TTL
    assert "cannot be extended further" in refused(post(client, path, {"minutes": 5}), 409, "longest_lifetime")
    own = Client()
    own.cookies[session.cookie_name] = key
    assert own.post(f"/api/sessions/{session.id}/extend/", "{}", content_type="application/json").status_code == 409


def test_extending_a_learner_whose_session_ends_meanwhile_is_refused_as_ended(
    client: Client, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = instructor()
    item = workshop(alice)
    learner, session, _ = learner_session(item, "Min")

    def ended_first(session_pk: object, minutes: int, workshop_end: object) -> None:
        Session.objects.get(pk=session_pk).claim_end(EndReason.DELETED)  # the learner pressed End meanwhile

    monkeypatch.setattr(actions, "extend_session", ended_first)
    client.force_login(alice)
    path = f"/workshops/{item.pk}/learners/{learner.pk}/extend/"
    assert "already ended" in refused(post(client, path, {"minutes": 10}), 409, "session_ended")


def test_extending_everyone_moves_the_workshops_end_and_every_running_session_with_it(
    client: Client, agent: FakeAgent
) -> None:
    alice = instructor()
    item = workshop(alice)
    sessions = [learner_session(item, name)[1] for name in ("Min", "Jun")]
    ended = learner_session(item, "Ara")[1]
    ended.claim_end(EndReason.DELETED)
    client.force_login(alice)
    answer = post(client, f"/workshops/{item.pk}/extend/", {"minutes": 30})
    assert answer.status_code == 200 and "2 running sessions" in answer.json()["message"]
    new_end = item.ends_at + timedelta(minutes=30)
    item.refresh_from_db()
    assert item.ends_at == new_end
    for session in sessions:
        session.refresh_from_db()
        assert session.expires_at == session.ends_by == new_end
    later = learner_session(item, "Late")[1]
    assert later.expires_at == new_end


def test_an_ended_workshop_cannot_be_extended(client: Client) -> None:
    alice = instructor()
    item = workshop(alice, ends_at=timezone.now() - timedelta(minutes=1))
    client.force_login(alice)
    assert "already over" in refused(
        post(client, f"/workshops/{item.pk}/extend/", {"minutes": 10}), 409, "workshop_over"
    )


# ---- end and reset ----------------------------------------------------------------------------


def test_ending_a_learner_ends_their_session_only_and_again_is_harmless(client: Client, agent: FakeAgent) -> None:
    alice = instructor()
    item = workshop(alice)
    min_learner, min_session, _ = learner_session(item, "Min")
    jun_session = learner_session(item, "Jun")[1]
    client.force_login(alice)
    path = f"/workshops/{item.pk}/learners/{min_learner.pk}/end/"
    answer = post(client, path)
    assert (
        answer.status_code == 200
        and answer.json()["message"] == "Min's session was ended; their sandboxes are being destroyed."
    )
    min_session.refresh_from_db()
    jun_session.refresh_from_db()
    assert min_session.state != Session.State.ACTIVE and min_session.ended_reason == EndReason.EXPIRED
    assert jun_session.state == Session.State.ACTIVE
    assert "had already ended" in post(client, path).json()["message"]


def test_resetting_a_learner_needs_a_confirmation_then_gives_new_sandboxes_of_the_same_names_and_restarts_the_lab(
    client: Client, agent: FakeAgent
) -> None:
    alice = instructor()
    item = lab_workshop(alice)
    learner, session, _ = learner_session(item, "Min")
    old = session.instances.get()
    Progress.objects.filter(session=session).update(current=3, passed=[1, 2], failed_checks={"3": 2})
    changes: list[dict[str, Any]] = []

    def heard(sender: object, **kwargs: Any) -> None:
        changes.append(kwargs)

    lab_signals.progress_changed.connect(heard)
    client.force_login(alice)
    path = f"/workshops/{item.pk}/learners/{learner.pk}/reset/"
    try:
        assert "confirm" in refused(post(client, path), 400, "confirm_needed")
        assert session.instances.get() == old  # nothing was touched
        answer = post(client, path, {"confirm": True})
    finally:
        lab_signals.progress_changed.disconnect(heard)
    assert answer.status_code == 200, answer.content
    old.refresh_from_db()
    assert old.state == Instance.State.DESTROYED and old.name != "node1"
    fresh = session.instances.get(name="node1")
    assert fresh.pk != old.pk and fresh.state == Instance.State.RUNNING and fresh.image == old.image
    assert old.sandbox_id not in agent.sandboxes and fresh.sandbox_id in agent.sandboxes
    progress = Progress.objects.get(session=session)
    assert (progress.current, progress.passed, progress.failed_checks, progress.finished_at) == (1, [], {}, None)
    assert [(c["kind"], c["step"]) for c in changes] == [("open", 1)]


def test_a_reset_of_an_ended_session_is_refused(client: Client, agent: FakeAgent) -> None:
    alice = instructor()
    item = workshop(alice)
    learner, session, _ = learner_session(item, "Min")
    session.claim_end(EndReason.DELETED)
    client.force_login(alice)
    path = f"/workshops/{item.pk}/learners/{learner.pk}/reset/"
    assert "already ended" in refused(post(client, path, {"confirm": True}), 409, "session_ended")


# ---- broadcast and step ---------------------------------------------------------------------------


def test_a_broadcast_is_kept_for_the_pages_that_open_later(client: Client, agent: FakeAgent) -> None:
    alice = instructor(first_name="Alice", last_name="Kim")
    item = workshop(alice)
    browser = Client()
    session = joined_session(join(browser, item.join_code, "Min"))
    assert browser.get(f"/api/sessions/{session.id}/").json()["workshop"]["broadcast"] is None
    client.force_login(alice)
    answer = post(client, f"/workshops/{item.pk}/broadcast/", {"message": "  쉬는 시간: 10분  "})
    assert answer.status_code == 200 and "1 running sessions" in answer.json()["message"]
    kept = browser.get(f"/api/sessions/{session.id}/").json()["workshop"]["broadcast"]
    assert kept["message"] == "쉬는 시간: 10분" and kept["from"] == "Alice Kim" and kept["sent_at"]


def test_pushing_the_class_to_a_step_moves_every_learner_there_without_solving_the_steps_before(
    client: Client, agent: FakeAgent
) -> None:
    alice = instructor()
    item = lab_workshop(alice)
    sessions = [learner_session(item, name)[1] for name in ("Min", "Jun")]
    client.force_login(alice)
    answer = post(client, f"/workshops/{item.pk}/step/", {"step": 3})
    assert answer.status_code == 200 and answer.json()["message"] == "2 learners were moved to step 3."
    for session in sessions:
        progress = Progress.objects.get(session=session)
        assert progress.current == 3 and progress.passed == []
    assert "from 1 to 3" in refused(post(client, f"/workshops/{item.pk}/step/", {"step": 4}), 400, "bad_step")


def test_pushing_a_workshop_without_a_lab_to_a_step_is_refused(client: Client) -> None:
    alice = instructor()
    item = workshop(alice)
    client.force_login(alice)
    assert "has no lab" in refused(post(client, f"/workshops/{item.pk}/step/", {"step": 1}), 400, "no_lab")


# ---- who may act, and bad requests -------------------------------------------------------------

ACTIONS = [
    "extend/",
    "broadcast/",
    "step/",
    "learners/{learner}/extend/",
    "learners/{learner}/end/",
    "learners/{learner}/reset/",
]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_is_refused_to_another_instructor_a_learner_a_visitor_and_a_get(
    client: Client, agent: FakeAgent, action: str
) -> None:
    alice = instructor()
    item = workshop(alice)
    learner, session, _ = learner_session(item, "Min")
    path = f"/workshops/{item.pk}/" + action.format(learner=learner.pk)
    client.force_login(instructor("bob"))
    assert "no workshop of yours" in refused(post(client, path, {}), 404, "unknown_workshop")
    client.force_login(User.objects.create_user(username="min", password="pw"))
    refused(post(client, path, {}), 403, "not_instructor")
    refused(post(Client(), path, {}), 403, "not_signed_in")
    client.force_login(alice)
    response = client.get(path)
    assert "POST" in refused(response, 405, "method_not_allowed") and response["Allow"] == "POST"
    session.refresh_from_db()
    assert session.state == Session.State.ACTIVE


def test_a_learner_of_another_workshop_is_not_found(client: Client, agent: FakeAgent) -> None:
    alice = instructor()
    mine, other = workshop(alice), workshop(alice, title="Other")
    stranger = learner_session(other, "Jun")[0]
    client.force_login(alice)
    path = f"/workshops/{mine.pk}/learners/{stranger.pk}/end/"
    assert "no such learner" in refused(post(client, path), 404, "unknown_learner")


@pytest.mark.parametrize(
    ("action", "body", "code", "sentence"),
    [
        ("extend/", {"minutes": 0}, "bad_minutes", "from 1 to 240"),
        ("extend/", {"minutes": 241}, "bad_minutes", "from 1 to 240"),
        ("extend/", {"minutes": "10"}, "bad_minutes", "whole number"),
        ("extend/", {}, "bad_minutes", "whole number"),
        ("learners/{learner}/extend/", {"minutes": True}, "bad_minutes", "whole number"),
        ("extend/", [10], "bad_json", "JSON object"),
        ("extend/", {"minutes": 5, "hours": 1}, "unknown_field", "hours is not a field"),
        ("broadcast/", {"message": "   "}, "bad_message", "1 to 300 characters"),
        ("broadcast/", {"message": "x" * 301}, "bad_message", "1 to 300 characters"),
        ("broadcast/", {"message": 5}, "bad_message", "1 to 300 characters"),
        ("learners/{learner}/reset/", {"confirm": "yes"}, "confirm_needed", "confirm"),
    ],
)
def test_a_bad_body_gets_400_with_a_sentence(
    client: Client, agent: FakeAgent, action: str, body: object, code: str, sentence: str
) -> None:
    alice = instructor()
    item = workshop(alice)
    learner = learner_session(item, "Min")[0]
    client.force_login(alice)
    assert sentence in refused(
        post(client, f"/workshops/{item.pk}/" + action.format(learner=learner.pk), body), 400, code
    )


def test_a_body_that_is_not_json_gets_400_with_a_sentence(client: Client) -> None:
    alice = instructor()
    item = workshop(alice)
    client.force_login(alice)
    response = client.post(f"/workshops/{item.pk}/extend/", "minutes=5", content_type="application/json")
    assert "JSON object" in refused(response, 400, "bad_json")


def test_a_korean_instructor_reads_the_sentences_in_korean(client: Client) -> None:
    alice = instructor()
    item = workshop(alice)
    client.force_login(alice)
    response = client.post(
        f"/workshops/{item.pk}/extend/", "{}", content_type="application/json", headers={"Accept-Language": "ko"}
    )
    assert "정수" in refused(response, 400, "bad_minutes")


def test_an_action_without_the_csrf_token_is_refused() -> None:
    alice = instructor()
    item = workshop(alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert post(strict, f"/workshops/{item.pk}/extend/", {"minutes": 5}).status_code == 403
    item.refresh_from_db()
    assert Workshop.objects.get(pk=item.pk).ends_at == item.ends_at


# ---- export -----------------------------------------------------------------------------------


def test_the_progress_csv_has_a_row_per_learner_with_korean_names_intact(client: Client, agent: FakeAgent) -> None:
    alice = instructor()
    item = lab_workshop(alice)
    min_session = learner_session(item, "김민지")[1]
    learner_session(item, "=cmd|' /C calc'!A0")
    Progress.objects.filter(session=min_session).update(current=3, passed=[1, 2], failed_checks={"2": 1, "3": 4})
    client.force_login(alice)
    assert f'href="/workshops/{item.pk}/progress.csv"' in client.get("/workshops/").content.decode()
    response = client.get(f"/workshops/{item.pk}/progress.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="workshop-{item.join_code}-progress.csv"'
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["name"] for row in rows] == ["김민지", "'=cmd|' /C calc'!A0"]
    first = rows[0]
    assert (first["session_state"], first["current_step"], first["steps_passed"], first["passed_steps"]) == (
        "active",
        "3",
        "2",
        "1 2",
    )
    assert first["failed_checks"] == "2:1 3:4" and first["finished_at"] == "" and first["joined_at"]
    assert client.post(f"/workshops/{item.pk}/progress.csv").status_code == 405
    client.force_login(instructor("bob"))
    assert client.get(f"/workshops/{item.pk}/progress.csv").status_code == 404


# ---- what reaches a learner's page -------------------------------------------------------------


async def viewer(session: Session, key: str) -> WebsocketCommunicator:
    """A terminal viewer of the session's node1, attached to its running sandbox."""
    communicator = WebsocketCommunicator(application, f"/ws/sessions/{session.id}/node1/?key={key}")
    accepted, _ = await communicator.connect(TIMEOUT)
    assert accepted
    assert (await next_event(communicator, "status"))["state"] == "running"
    return communicator


def acting(alice: User, path: str, body: object) -> Any:
    """POST an action as ``alice`` from a worker thread, whose events reach this test's loop."""

    def run() -> HttpResponse:
        client = Client()
        client.force_login(alice)
        try:
            return post(client, path, body)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)()


@pytest.mark.django_db(transaction=True)
async def test_a_broadcast_and_a_pushed_step_reach_a_connected_learners_terminal(agent: FakeAgent) -> None:
    alice = await asyncio.to_thread(instructor)
    item = await asyncio.to_thread(lab_workshop, alice)
    _, session, key = await asyncio.to_thread(learner_session, item, "Min")
    communicator = await viewer(session, key)
    try:
        answer = await acting(alice, f"/workshops/{item.pk}/broadcast/", {"message": "Break: back at 15:00"})
        assert answer.status_code == 200, answer.content
        event = await next_event(communicator, "broadcast")
        assert event["message"] == "Break: back at 15:00" and event["from"] == "alice" and event["sent_at"]
        assert (await acting(alice, f"/workshops/{item.pk}/step/", {"step": 2})).status_code == 200
        assert (await next_event(communicator, "lab_step"))["step"] == 2
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reset_tells_the_viewer_and_closes_it_so_that_it_reconnects_to_the_new_sandbox(
    agent: FakeAgent,
) -> None:
    alice = await asyncio.to_thread(instructor)
    item = await asyncio.to_thread(workshop, alice)
    learner, session, key = await asyncio.to_thread(learner_session, item, "Min")
    communicator = await viewer(session, key)
    path = f"/workshops/{item.pk}/learners/{learner.pk}/reset/"
    assert (await acting(alice, path, {"confirm": True})).status_code == 200
    assert (await next_event(communicator, "reset"))["nodes"] == ["node1"]
    assert await close_code(communicator) == 4503  # the page reconnects
    again = await viewer(session, key)  # the same address: now the new sandbox
    await again.send_to(bytes_data=b"\x00echo hi\r")
    await again.disconnect()
    fresh = await asyncio.to_thread(lambda: session.instances.get(name="node1"))
    assert fresh.state == Instance.State.RUNNING and fresh.sandbox_id in agent.sandboxes
