"""The instructor's live dashboard and the help queue (playground/workshops/dashboard.py,
consumers.py, helpqueue.py): the websocket through Channels' WebsocketCommunicator against the real
ASGI application, the pages and the hand API through Django's test client (docs/workshops.md, "The
dashboard" and "The help queue")."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django import Settings
from redis.exceptions import ConnectionError as RedisConnectionError

from playground.labs import api as labs_api
from playground.labs.models import Lab, Progress, Step
from playground.sandboxes import events
from playground.sandboxes.models import Session
from playground.workshops import consumers
from playground.workshops.models import HelpRequest, Learner, Workshop
from tests.fakeagent import FakeAgent
from tests.fast.test_terminal import (  # noqa: F401 (viewers_disconnected: every connection closed after its test)
    Started,
    attached,
    close_code,
    connected,
    next_event,
    viewers_disconnected,
)
from tests.fast.test_watch import signed_in
from tests.fast.test_workshops import instructor as staff
from tests.fast.test_workshops import workshop

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads the database from another thread

LIVE = 1.0  # seconds: the acceptance's bound on a row's move


def learner(item: Workshop, name: str = "Min") -> tuple[Learner, str]:
    """A learner of ``item`` with a running session (no sandbox asked for), and the session's key."""
    session, key = Session.start("busybox", 3600, None)
    return Learner.objects.create(workshop=item, name=name, pin_hash="-", session=session, sealed_key="-"), key


def lab(steps: int = 3) -> Lab:
    made = Lab.objects.create(slug="docker-101", language="en", title="Docker 101", image="busybox")
    for number in range(1, steps + 1):
        Step.objects.create(lab=made, number=number, title=f"Step {number}", html="<p>.</p>", check_script="true")
    return made


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def hand(client: Client, learner: Learner, key: str, body: str = "{}", method: str = "post") -> Any:
    """The learner's session's hand API, with ``key`` in the Authorization header."""
    send = getattr(client, method)
    path = f"/api/sessions/{learner.session_id}/hand/"
    return send(path, body, content_type="application/json", headers={"Authorization": f"Session {key}"})


async def dashboard_of(item: Workshop, user: User | None = None) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """The workshop's dashboard opened by its owner (or ``user``), and the snapshot it got first."""
    headers = await sync_to_async(signed_in)(user or await sync_to_async(lambda: item.owner)())
    page = await connected(f"/ws/workshops/{item.pk}/", headers)
    return page, await next_event(page, "snapshot")


async def refused(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[str, int]:
    page = await connected(path, headers)
    error = await next_event(page, "error")
    return error["code"], await close_code(page)


# -- who may open it --------------------------------------------------------------------------
async def test_the_dashboard_websocket_refuses_anonymous_visitors_non_staff_users_and_other_instructors() -> None:
    item = await sync_to_async(workshop)(await sync_to_async(staff)())
    path = f"/ws/workshops/{item.pk}/"
    assert await refused(path) == ("forbidden", 4403)
    user = await sync_to_async(User.objects.create_user)("min", password="pw")
    assert await refused(path, await sync_to_async(signed_in)(user)) == ("forbidden", 4403)
    bob = await sync_to_async(staff)("bob")
    assert await refused(path, await sync_to_async(signed_in)(bob)) == ("forbidden", 4403)
    assert await refused(f"/ws/workshops/{item.pk + 1}/", await sync_to_async(signed_in)(bob)) == (
        "unknown_workshop",
        4404,
    )


async def test_the_owners_cookie_sent_from_another_sites_page_is_refused(settings: Settings) -> None:
    settings.ALLOWED_HOSTS = ["playground.example"]
    item = await sync_to_async(workshop)(await sync_to_async(staff)())
    cookie = await sync_to_async(signed_in)(await sync_to_async(lambda: item.owner)())
    path = f"/ws/workshops/{item.pk}/"
    assert await refused(path, [*cookie, (b"origin", b"https://evil.example")]) == ("forbidden", 4403)
    page = await connected(path, [*cookie, (b"origin", b"https://playground.example")])
    assert (await next_event(page, "snapshot"))["rows"] == []


async def test_a_superuser_opens_any_workshops_dashboard() -> None:
    item = await sync_to_async(workshop)(await sync_to_async(staff)())
    root = await sync_to_async(User.objects.create_superuser)("root", password="pw")
    _, snapshot = await dashboard_of(item, root)
    assert snapshot["rows"] == []


def test_the_dashboard_page_is_its_owners_and_a_superusers_only(client: Client) -> None:
    alice = staff()
    item = workshop(alice)
    assert client.get(f"/workshops/{item.pk}/").status_code == 302  # sent to sign in
    client.force_login(User.objects.create_user("min", password="pw"))
    assert client.get(f"/workshops/{item.pk}/").status_code == 403
    assert logged_in(staff("bob")).get(f"/workshops/{item.pk}/").status_code == 404
    page = logged_in(alice).get(f"/workshops/{item.pk}/")
    assert page.status_code == 200
    assert 'data-page="dashboard"' in page.content.decode() and f'data-workshop="{item.pk}"' in page.content.decode()
    root = User.objects.create_superuser("root", password="pw")
    assert logged_in(root).get(f"/workshops/{item.pk}/").status_code == 200
    assert f'href="/workshops/{item.pk}/"' in logged_in(alice).get("/workshops/").content.decode()


# -- the snapshot and the rows ------------------------------------------------------------------
async def test_the_snapshot_has_a_row_per_learner_the_histogram_and_the_help_queue() -> None:
    def prepare() -> Workshop:
        made = lab(3)
        item = workshop(staff(), lab_slug="docker-101", lab_language="en", stuck_failed_checks=2, stuck_minutes=5)
        min_, _ = learner(item, "Min")
        jo, _ = learner(item, "Jo")
        Progress.objects.create(session=min_.session, lab=made, current=2, passed=[1], failed_checks={"2": 2})
        Progress.objects.create(session=jo.session, lab=made, current=1)
        HelpRequest.objects.create(learner=jo, sentence="help")
        return item

    item = await sync_to_async(prepare)()
    _, snapshot = await dashboard_of(item)
    min_row, jo_row = snapshot["rows"]
    assert (min_row["name"], min_row["step"], min_row["steps"], min_row["stuck_reason"]) == ("Min", 2, 3, "checks")
    assert (jo_row["name"], jo_row["step"], jo_row["stuck"], jo_row["hand"]["sentence"]) == ("Jo", 1, False, "help")
    assert snapshot["histogram"] == {"steps": 3, "counts": [1, 1, 0], "finished": 0}
    assert [(entry["name"], entry["sentence"]) for entry in snapshot["help"]] == [("Jo", "help")]
    assert snapshot["settings"] == {"stuck_failed_checks": 2, "stuck_minutes": 5}


async def test_a_learner_who_joins_is_on_the_dashboard_within_a_second(agent: FakeAgent) -> None:
    item = await sync_to_async(workshop)(await sync_to_async(staff)())
    page, snapshot = await dashboard_of(item)
    assert snapshot["rows"] == []

    def join() -> float:
        response = Client().post("/join", {"code": item.join_code, "name": "Min"})
        assert response.status_code == 302, response.content.decode()[:500]
        return time.monotonic()

    joined = await sync_to_async(join, thread_sensitive=False)()
    event = await asyncio.wait_for(next_event(page, "row"), LIVE)
    assert time.monotonic() - joined < LIVE
    assert event["row"]["name"] == "Min" and event["row"]["state"] == "active"
    assert event["histogram"] is None  # a free sandbox workshop


async def test_a_step_change_and_a_check_move_the_row_within_a_second() -> None:
    def prepare() -> tuple[Workshop, int]:
        made = lab(3)
        item = workshop(staff(), lab_slug="docker-101", lab_language="en")
        min_, _ = learner(item)
        jun, _ = learner(item, "Jun")  # unchanged, and still counted in the histogram
        Progress.objects.create(session=jun.session, lab=made, current=1)
        return item, Progress.objects.create(session=min_.session, lab=made, current=1).pk

    item, progress_pk = await sync_to_async(prepare)()
    page, _ = await dashboard_of(item)
    await sync_to_async(labs_api._record, thread_sensitive=False)(progress_pk, 1, [], "check", True)
    event = await asyncio.wait_for(next_event(page, "row"), LIVE)
    assert (event["row"]["step"], event["row"]["checks_failed"], event["row"]["failed_here"]) == (1, 1, 1)
    await sync_to_async(labs_api._record, thread_sensitive=False)(progress_pk, 2, [1], "open")
    event = await asyncio.wait_for(next_event(page, "row"), LIVE)
    assert (event["row"]["step"], event["row"]["checks_passed"], event["row"]["failed_here"]) == (2, 1, 0)
    assert event["row"]["name"] == "Min" and event["histogram"]["counts"] == [1, 1, 0]


async def test_a_class_changing_at_once_is_pushed_in_two_loads_with_every_learners_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twenty learners change together: the consumer takes every message while the first learner's
    row loads (slowed here to 0.2 s), then loads the other nineteen at once, and each row is pushed."""

    def prepare() -> tuple[Workshop, list[int]]:
        item = workshop(staff())
        return item, [learner(item, f"L{i:02d}")[0].pk for i in range(20)]

    item, pks = await sync_to_async(prepare)()
    page, _ = await dashboard_of(item)
    loads: list[set[int]] = []
    load = consumers.changed

    async def slow_first(workshop_: Workshop, learner_pks: set[int]) -> Any:
        loads.append(set(learner_pks))
        if len(loads) == 1:
            await asyncio.sleep(0.2)
        return await load(workshop_, learner_pks)

    monkeypatch.setattr(consumers, "changed", slow_first)
    for pk in pks:
        await sync_to_async(consumers.send_learner_changed, thread_sensitive=False)(item.pk, pk)
    rows = [(await asyncio.wait_for(next_event(page, "row"), LIVE))["row"] for _ in pks]
    assert sorted(row["learner"] for row in rows) == sorted(pks)
    assert loads == [{pks[0]}, set(pks[1:])]


def test_a_progress_change_goes_through_when_the_channel_layer_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made = lab(2)
    min_, _ = learner(workshop(staff(), lab_slug="docker-101"))
    progress = Progress.objects.create(session=min_.session, lab=made, current=1)

    class Down:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            raise RedisConnectionError("Redis is restarting")

    monkeypatch.setattr(events, "get_channel_layer", Down)
    with caplog.at_level(logging.WARNING, logger="playground.workshops"):
        described = labs_api._record(progress.pk, 2, [1], "open")
    assert described["current"] == 2
    assert "cannot tell workshop" in caplog.text and "Redis is restarting" in caplog.text


# -- the help queue ---------------------------------------------------------------------------
async def test_a_raised_hand_is_queued_on_the_dashboard_and_resolving_it_empties_the_queue() -> None:
    def prepare() -> tuple[Workshop, Learner, str, Learner, str]:
        item = workshop(staff())
        return item, *learner(item, "Min"), *learner(item, "Jo")

    item, min_, min_key, jo, jo_key = await sync_to_async(prepare)()
    page, _ = await dashboard_of(item)
    raised = await sync_to_async(hand, thread_sensitive=False)(Client(), jo, jo_key, '{"sentence": " port  8080? "}')
    assert raised.status_code == 200 and raised.json()["hand"]["sentence"] == "port 8080?"
    row = await asyncio.wait_for(next_event(page, "row"), LIVE)
    assert row["row"]["name"] == "Jo" and row["row"]["hand"]["sentence"] == "port 8080?"
    queue = (await next_event(page, "help"))["help"]
    assert [(entry["name"], entry["sentence"]) for entry in queue] == [("Jo", "port 8080?")]
    await sync_to_async(hand, thread_sensitive=False)(Client(), min_, min_key)
    queue = (await asyncio.wait_for(next_event(page, "help"), LIVE))["help"]
    assert [entry["name"] for entry in queue] == ["Jo", "Min"], "first raised, first served"

    def resolve(request_pk: int) -> Any:
        return logged_in(item.owner).post(f"/workshops/{item.pk}/help/{request_pk}/resolve/")

    resolved = await sync_to_async(resolve, thread_sensitive=False)(queue[0]["id"])
    assert resolved.status_code == 200 and resolved.json() == {"ok": True, "message": "Jo's request is resolved."}
    queue = (await asyncio.wait_for(next_event(page, "help"), LIVE))["help"]
    assert [entry["name"] for entry in queue] == ["Min"]
    resolved_pk = await sync_to_async(raised_pk)(jo)
    again = await sync_to_async(resolve, thread_sensitive=False)(resolved_pk)
    assert again.status_code == 409 and "already resolved" in again.json()["message"]
    request = await sync_to_async(HelpRequest.objects.select_related("resolved_by").get)(pk=resolved_pk)
    assert request.resolved_by is not None and request.resolved_by.username == "alice"


async def test_the_learners_pages_hear_their_hand_go_up_and_come_down_when_the_instructor_resolves_it(
    agent: FakeAgent,
) -> None:
    def prepare() -> tuple[Workshop, Learner, Started]:
        started = Started()
        started.provision()
        item = workshop(staff())
        made = Learner.objects.create(workshop=item, name="Min", pin_hash="-", session=started.session, sealed_key="-")
        return item, made, started

    item, min_, started = await sync_to_async(prepare)()
    viewer = await attached(started)
    await sync_to_async(hand, thread_sensitive=False)(Client(), min_, started.key, '{"sentence": "help"}')
    event = await asyncio.wait_for(next_event(viewer, "hand"), LIVE)
    assert event["hand"]["sentence"] == "help"
    pk = await sync_to_async(raised_pk)(min_)

    def resolve() -> Any:
        return logged_in(item.owner).post(f"/workshops/{item.pk}/help/{pk}/resolve/")

    response = await sync_to_async(resolve, thread_sensitive=False)()
    assert response.status_code == 200
    assert (await asyncio.wait_for(next_event(viewer, "hand"), LIVE))["hand"] is None


def raised_pk(learner: Learner) -> int:
    return int(HelpRequest.objects.filter(learner=learner).latest("raised_at").pk)


def test_raising_again_updates_the_sentence_and_keeps_the_place_and_lowering_removes_it(client: Client) -> None:
    item = workshop(staff())
    min_, key = learner(item)
    first = hand(client, min_, key, '{"sentence": "stuck"}').json()["hand"]
    second = hand(client, min_, key, '{"sentence": "still stuck"}').json()["hand"]
    assert second == {"raised_at": first["raised_at"], "sentence": "still stuck"}
    assert HelpRequest.objects.filter(resolved_at__isnull=True).count() == 1
    session = client.get(f"/api/sessions/{min_.session_id}/", headers={"Authorization": f"Session {key}"}).json()
    assert session["workshop"]["hand"] == second
    assert hand(client, min_, key, method="delete").status_code == 204
    assert hand(client, min_, key, method="delete").status_code == 204  # lowering a lowered hand
    session = client.get(f"/api/sessions/{min_.session_id}/", headers={"Authorization": f"Session {key}"}).json()
    assert session["workshop"]["hand"] is None
    assert HelpRequest.objects.get().resolved_by is None


def test_a_learner_cannot_raise_a_hand_in_another_learners_session_nor_open_the_dashboard(client: Client) -> None:
    item = workshop(staff())
    min_, min_key = learner(item, "Min")
    jo, _ = learner(item, "Jo")
    response = hand(client, jo, min_key)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert not HelpRequest.objects.exists()
    client.cookies[min_.session.cookie_name] = min_key
    assert client.get(f"/workshops/{item.pk}/").status_code == 302  # a learner is no instructor
    assert client.post(f"/workshops/{item.pk}/help/1/resolve/").status_code == 302


def test_another_instructor_cannot_resolve_a_hand_and_a_request_of_another_workshop_is_404(client: Client) -> None:
    item = workshop(staff())
    min_, key = learner(item)
    hand(client, min_, key)
    pk = raised_pk(min_)
    assert logged_in(staff("bob")).post(f"/workshops/{item.pk}/help/{pk}/resolve/").status_code == 404
    other = workshop(item.owner, title="Another day")
    response = logged_in(item.owner).post(f"/workshops/{other.pk}/help/{pk}/resolve/")
    assert response.status_code == 404 and response.json()["error"] == "unknown_help_request"
    assert logged_in(item.owner).get(f"/workshops/{item.pk}/help/{pk}/resolve/").status_code == 405
    assert HelpRequest.objects.get().resolved_at is None


def test_a_bad_hand_request_gets_a_sentence(client: Client) -> None:
    item = workshop(staff())
    min_, key = learner(item)
    too_long = hand(client, min_, key, '{"sentence": "' + "x" * 201 + '"}')
    assert too_long.status_code == 400 and too_long.json()["error"] == "bad_sentence"
    assert "at most 200 characters" in too_long.json()["message"]
    assert hand(client, min_, key, '{"sentence": 3}').status_code == 400
    assert hand(client, min_, key, '{"why": "x"}').json()["error"] == "unknown_field"
    assert hand(client, min_, key, "[1]").json()["error"] == "bad_json"
    assert (
        client.get(f"/api/sessions/{min_.session_id}/hand/", headers={"Authorization": f"Session {key}"}).status_code
        == 405
    )
    Session.objects.filter(pk=min_.session_id).update(state=Session.State.ENDED)
    ended = hand(client, min_, key)
    assert ended.status_code == 409 and "join the workshop again" in ended.json()["message"]
    assert not HelpRequest.objects.exists()


def test_a_session_of_no_workshop_has_no_hand_to_raise(client: Client) -> None:
    session, key = Session.start("busybox", 3600, None)
    response = client.post(
        f"/api/sessions/{session.id}/hand/",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Session {key}"},
    )
    assert response.status_code == 404 and "not part of a workshop" in response.json()["message"]
    korean = client.post(
        f"/api/sessions/{session.id}/hand/",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Session {key}", "Accept-Language": "ko"},
    )
    assert "워크숍" in korean.json()["message"]


# -- the workshop's settings --------------------------------------------------------------------
def test_the_create_form_sets_the_stuck_thresholds_and_refuses_bad_ones(client: Client, agent: FakeAgent) -> None:
    client.force_login(staff())
    now = timezone.now()
    form = {
        "title": "Docker day",
        "image": "busybox",
        "capacity": "10",
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "stuck_failed_checks": "5",
        "stuck_minutes": "15",
    }
    bad = client.post("/workshops/", {**form, "stuck_minutes": "0"})
    assert bad.status_code == 400 and "stuck thresholds" in bad.content.decode()
    assert client.post("/workshops/", form).status_code == 302
    made = Workshop.objects.get()
    assert (made.stuck_failed_checks, made.stuck_minutes) == (5, 15)
