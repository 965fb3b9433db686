"""Workshops (playground/workshops/): instructors, their pages, and learners joining from one code,
through Django's test client and a fake agent (docs/workshops.md)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.hosts.models import SandboxHost
from playground.labs.models import Lab, Progress, Step
from playground.sandboxes import ratelimit, tasks
from playground.sandboxes.models import EndReason, Session
from playground.workshops import joining
from playground.workshops.models import Learner, Workshop
from tests import pgkit
from tests.fakeagent import FakeAgent
from tests.racekit import race

pytestmark = pytest.mark.django_db


def configure(settings: Settings, **changes: Any) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, **changes)


def instructor(name: str = "alice", **extra: Any) -> User:
    return User.objects.create_user(username=name, password="secret-words", is_staff=True, **extra)


def workshop(owner: User, **fields: Any) -> Workshop:
    """A workshop of ``owner`` open from an hour ago for two more hours (``fields`` change it)."""
    now = timezone.now()
    values: dict[str, Any] = {
        "title": "Docker day",
        "image": "busybox",
        "capacity": 50,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(hours=2),
        **fields,
    }
    return Workshop.objects.create(owner=owner, **values)


def join(client: Client, code: str, name: str, pin: str = "", language: str = "") -> HttpResponse:
    headers = {"Accept-Language": language} if language else {}
    return client.post("/join", {"code": code, "name": name, "pin": pin}, headers=headers)


def joined_session(response: HttpResponse) -> Session:
    """The session a successful join redirected to."""
    assert response.status_code == 302, response.content.decode()[:2000]
    match = re.fullmatch(r"/s/([0-9a-f-]{36})/", response["Location"])
    assert match, response["Location"]
    return Session.objects.get(pk=match.group(1))


def shown_pin(client: Client, session: Session) -> str:
    """The PIN the session's page shows (once), after a join."""
    page = client.get(f"/s/{session.id}/").content.decode()
    match = re.search(r"Your PIN is (\d{4})", page)
    assert match, "the session page shows no PIN"
    return match.group(1)


def refusal(response: HttpResponse, status: int) -> str:
    """The sentence of a refused join (the join page again, with ``status``)."""
    assert response.status_code == status, response.content.decode()[:2000]
    match = re.search(r'<p class="form-error" role="alert">(.*?)</p>', response.content.decode(), re.S)
    assert match, "the page says nothing about what went wrong"
    return match.group(1).replace("&#x27;", "'")


# ---- instructors -------------------------------------------------------------------------------


def test_instructor_add_creates_a_staff_user_with_the_password_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    out = io.StringIO()
    call_command("instructor", "add", "bob", "--password-stdin", stdout=out)
    user = User.objects.get(username="bob")
    assert user.is_staff and not user.is_superuser and user.check_password("correct horse")
    assert "bob" in out.getvalue()


def test_instructor_add_refuses_a_taken_name_and_an_empty_password(monkeypatch: pytest.MonkeyPatch) -> None:
    instructor("alice")
    with pytest.raises(CommandError, match="already exists"):
        call_command("instructor", "add", "alice", "--password-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(CommandError, match="password is empty"):
        call_command("instructor", "add", "carol", "--password-stdin")
    assert not User.objects.filter(username="carol").exists()


def test_instructor_list_names_the_instructors_and_not_other_users() -> None:
    instructor("alice")
    User.objects.create_user(username="learner", password="x")
    out = io.StringIO()
    call_command("instructor", "list", stdout=out)
    assert out.getvalue().split() == ["alice"]


def test_an_instructor_signs_in_on_the_login_page_and_lands_on_their_workshops(client: Client) -> None:
    instructor("alice")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and "Instructor sign-in" in page.content.decode()
    wrong = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200 and "do not match an account" in wrong.content.decode()
    signed_in = client.post("/accounts/login/", {"username": "alice", "password": "secret-words"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/workshops/"


def test_the_login_page_is_korean_for_a_korean_browser(client: Client) -> None:
    page = client.get("/accounts/login/", headers={"Accept-Language": "ko"}).content.decode()
    assert "강사 로그인" in page and '<html lang="ko">' in page


def test_an_anonymous_visitor_is_sent_to_sign_in_and_a_user_who_is_not_an_instructor_is_refused(
    client: Client,
) -> None:
    owner = instructor("alice")
    item = workshop(owner)
    for path in ("/workshops/", f"/workshops/{item.pk}/projector/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), path
    client.force_login(User.objects.create_user(username="learner", password="x"))
    for path in ("/workshops/", f"/workshops/{item.pk}/projector/"):
        response = client.get(path)
        assert response.status_code == 403 and "for instructors" in response.content.decode(), path


def test_an_instructor_sees_only_their_own_workshops_and_another_ones_projector_is_404(client: Client) -> None:
    alice, bob = instructor("alice"), instructor("bob")
    mine, theirs = workshop(alice, title="Alice's class"), workshop(bob, title="Bob's class")
    client.force_login(alice)
    listing = client.get("/workshops/").content.decode()
    assert mine.join_code in listing and theirs.join_code not in listing
    assert client.get(f"/workshops/{theirs.pk}/projector/").status_code == 404
    assert client.get(f"/workshops/{mine.pk}/projector/").status_code == 200


def test_ending_a_workshop_ends_its_learners_sessions_and_closes_the_join_and_only_its_owner_may(
    client: Client, agent: FakeAgent
) -> None:
    alice = instructor("alice")
    item = workshop(alice)
    learners = [joined_session(join(Client(), item.join_code, name)) for name in ("Min", "Jun")]
    client.force_login(instructor("bob"))
    assert client.post(f"/workshops/{item.pk}/end/").status_code == 404
    client.force_login(alice)
    assert client.get(f"/workshops/{item.pk}/end/").status_code == 405
    ended = client.post(f"/workshops/{item.pk}/end/")
    assert ended.status_code == 302 and ended["Location"] == "/workshops/"
    assert "2 running sessions were ended" in client.get("/workshops/").content.decode()
    for session in learners:
        session.refresh_from_db()
        assert session.state != Session.State.ACTIVE and session.ended_reason == EndReason.EXPIRED
    item.refresh_from_db()
    assert item.ends_at <= timezone.now()
    assert "already over" in refusal(join(Client(), item.join_code, "Late"), 410)


def test_a_superuser_sees_every_workshop(client: Client) -> None:
    bob = instructor("bob")
    theirs = workshop(bob)
    client.force_login(instructor("root", is_superuser=True))
    assert theirs.join_code in client.get("/workshops/").content.decode()
    assert client.get(f"/workshops/{theirs.pk}/projector/").status_code == 200


# ---- creating a workshop and its projector -------------------------------------------------------


def test_creating_a_workshop_makes_it_the_instructors_and_opens_its_projector(client: Client, agent: FakeAgent) -> None:
    Lab.objects.create(slug="docker-101", language="ko", title="도커 시작하기", image="busybox")
    alice = instructor("alice")
    client.force_login(alice)
    form = client.get("/workshops/").content.decode()
    assert 'value="docker-101:ko"' in form and 'value="debian"' in form
    response = client.post(
        "/workshops/",
        {
            "title": "Seminar",
            "lab": "docker-101:ko",
            "image": "busybox",
            "capacity": "40",
            "starts_at": "2026-01-01T09:00",
            "ends_at": "2099-01-01T17:00",
        },
    )
    created = Workshop.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/workshops/{created.pk}/projector/"
    assert (created.owner, created.lab_slug, created.lab_language, created.capacity) == (alice, "docker-101", "ko", 40)
    assert created.idle_reaping is False and created.ends_at.hour == 17 and len(created.join_code) == 6


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"title": ""}, "title of 1 to 120"),
        ({"capacity": "201"}, "from 1 to 200"),
        ({"capacity": "0"}, "from 1 to 200"),
        ({"ends_at": "2026-01-01T08:00"}, "end must come after the start"),
        ({"starts_at": "tomorrow"}, "date and time"),
        ({"image": "nosuch"}, "images in the list"),
        ({"lab": "gone:en"}, "not installed"),
    ],
)
def test_a_bad_workshop_form_is_refused_with_400_and_a_sentence(
    client: Client, agent: FakeAgent, change: dict[str, str], sentence: str
) -> None:
    client.force_login(instructor("alice"))
    form = {"title": "T", "lab": "", "image": "busybox", "capacity": "10"}
    form |= {"starts_at": "2026-01-01T09:00", "ends_at": "2099-01-01T17:00", **change}
    response = client.post("/workshops/", form)
    assert response.status_code == 400 and sentence in response.content.decode()
    assert not Workshop.objects.exists()


def test_a_workshop_without_a_chosen_image_gets_the_hosts_default_image(settings: Settings) -> None:
    configure(settings, default_image="debian")
    now = timezone.now()
    made = Workshop.objects.create(
        owner=instructor(), title="T", capacity=5, starts_at=now, ends_at=now + timedelta(hours=1)
    )
    assert made.image == "debian"


def test_the_projector_shows_the_join_code_and_the_join_url_as_an_svg_qr_code(client: Client) -> None:
    alice = instructor("alice")
    item = workshop(alice)
    client.force_login(alice)
    page = client.get(f"/workshops/{item.pk}/projector/").content.decode()
    assert '<p class="join-code"' in page and f">{item.join_code}</p>" in page
    assert f"http://testserver/join/{item.join_code}" in page
    assert re.search(r"<svg[^>]*>.*<path", page, re.S), "no inline SVG QR code"


# ---- joining ------------------------------------------------------------------------------------


def test_joining_starts_a_session_until_the_workshops_end_sets_its_cookie_and_shows_the_pin_once(
    client: Client, agent: FakeAgent
) -> None:
    item = workshop(instructor())
    assert "Join a workshop" in client.get(f"/join/{item.join_code}").content.decode()
    response = join(client, item.join_code.lower(), "  Min   Ji ")
    session = joined_session(response)
    assert response.cookies[session.cookie_name]["httponly"]
    assert session.key_matches(response.cookies[session.cookie_name].value)
    assert session.expires_at == item.ends_at and session.idle_exempt_until == item.ends_at
    assert [s.hostname for s in agent.sandboxes.values()] == ["node1"]
    learner = Learner.objects.get()
    assert (learner.workshop, learner.name, learner.session) == (item, "Min Ji", session)
    pin = shown_pin(client, session)
    assert pin not in learner.pin_hash
    assert "Your PIN" not in client.get(f"/s/{session.id}/").content.decode()  # once only
    api = client.get(f"/api/sessions/{session.id}/").json()  # the cookie opens it
    assert api["expires_at"] == api["max_expires_at"] == item.ends_at.isoformat()
    assert api["workshop"] == {
        "id": item.pk,
        "title": item.title,
        "learner": "Min Ji",
        "broadcast": None,
        "hand": None,
        "recordings": f"/s/{session.id}/recordings/",
    }


def test_a_session_of_no_workshop_has_no_workshop_part(client: Client, agent: FakeAgent) -> None:
    created = client.post("/api/sessions/", "{}", content_type="application/json")
    assert created.status_code == 201, created.content
    assert "workshop" not in created.json()
    assert "workshop" not in client.get(f"/api/sessions/{created.json()['id']}/").json()


def test_a_learners_session_cannot_be_extended_past_the_workshops_end(client: Client, agent: FakeAgent) -> None:
    item = workshop(instructor(), ends_at=timezone.now() + timedelta(minutes=30))
    session = joined_session(join(client, item.join_code, "Min"))
    response = client.post(f"/api/sessions/{session.id}/extend/", "{}", content_type="application/json")
    assert response.status_code == 409 and response.json()["error"] == "longest_lifetime"
    session.refresh_from_db()
    assert session.expires_at == item.ends_at


def test_a_workshop_with_a_lab_starts_its_learners_in_that_lab(client: Client, agent: FakeAgent) -> None:
    lab = Lab.objects.create(slug="docker-101", language="ko", title="도커 시작하기", image="debian")
    Step.objects.create(lab=lab, number=1, title="둘러보기", html="<p>보기</p>")
    item = workshop(instructor(), lab_slug="docker-101", lab_language="ko")
    session = joined_session(join(client, item.join_code, "Min"))
    assert session.image == "debian" and Progress.objects.get(session=session).lab == lab


def test_coming_back_with_the_pin_from_a_fresh_browser_gives_the_same_session(client: Client, agent: FakeAgent) -> None:
    item = workshop(instructor())
    first = joined_session(join(client, item.join_code, "Min"))
    pin = shown_pin(client, first)
    other = Client()
    response = join(other, item.join_code, "min", pin)  # the name in another case is the same name
    assert joined_session(response) == first
    assert first.key_matches(response.cookies[first.cookie_name].value)
    assert len(agent.sandboxes) == 1 and Learner.objects.count() == 1
    assert "Your PIN" not in other.get(f"/s/{first.id}/").content.decode()


def min_joined(client: Client) -> tuple[Workshop, Session, str, str]:
    """A workshop Min joined from ``client``: it, Min's session, Min's PIN and a PIN that is not it."""
    item = workshop(instructor())
    session = joined_session(join(client, item.join_code, "Min"))
    pin = shown_pin(client, session)
    return item, session, pin, f"{(int(pin) + 1) % 10000:04d}"


def test_a_taken_name_without_its_pin_or_with_a_wrong_pin_gets_a_sentence_not_the_session(
    client: Client, agent: FakeAgent
) -> None:
    item, session, pin, wrong = min_joined(client)
    other = Client()
    assert "already uses the name Min" in refusal(join(other, item.join_code, "Min"), 409)
    response = join(other, item.join_code, "Min", wrong)
    assert "does not match the name Min" in refusal(response, 403)
    assert session.cookie_name not in response.cookies


def test_five_wrong_pins_in_a_row_lock_the_name_even_from_the_right_pin_until_the_lock_ends(
    client: Client, agent: FakeAgent
) -> None:
    item, session, pin, wrong = min_joined(client)
    other = Client()
    for _ in range(joining.PIN_TRIES):
        refusal(join(other, item.join_code, "Min", wrong), 403)
    locked = join(other, item.join_code, "Min", pin)
    assert "is locked for 10 minutes" in refusal(locked, 429) and int(locked["Retry-After"]) > 500
    Learner.objects.filter(name="Min").update(locked_until=timezone.now() - timedelta(seconds=1))
    assert session.cookie_name in join(other, item.join_code, "Min", pin).cookies


def test_a_code_that_names_no_workshop_is_refused_with_404(client: Client, agent: FakeAgent) -> None:
    workshop(instructor())
    assert "no workshop with the code" in refusal(join(client, "ZZZZZZ", "Min"), 404)
    assert "no workshop with the code" in refusal(join(client, "nonsense!", "Min"), 404)


def test_a_full_workshop_refuses_a_new_name_with_409(client: Client, agent: FakeAgent) -> None:
    item = workshop(instructor(), capacity=1)
    joined_session(join(client, item.join_code, "Min"))
    assert "all 1 places are taken" in refusal(join(Client(), item.join_code, "Jun"), 409)
    assert Learner.objects.count() == 1 and Session.objects.count() == 1


@pytest.mark.skipif(not pgkit.wanted(), reason="SQLite's IMMEDIATE transactions take turns (tests/racekit.py)")
@pytest.mark.django_db(transaction=True)
def test_two_joins_racing_for_the_last_place_get_it_once(agent: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    item = workshop(instructor(), capacity=1)
    first, second = (lambda: join(Client(), item.join_code, "Min")), (lambda: join(Client(), item.join_code, "Jun"))
    # Held once its learner is inserted: the seat's count is the join's last step before its commit.
    assert race(monkeypatch, first, second, held=(joining.consumers, "learner_changed")) == (302, 409)
    assert list(Learner.objects.values_list("name", flat=True)) == ["Min"]


def test_a_workshop_that_is_over_or_not_open_yet_refuses_joins(client: Client, agent: FakeAgent) -> None:
    owner, now = instructor(), timezone.now()
    over = workshop(owner, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=1))
    later = workshop(owner, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=3))
    assert "already over" in refusal(join(client, over.join_code, "Min"), 410)
    assert "This workshop opens at" in refusal(join(client, later.join_code, "Min"), 403)
    assert not Session.objects.exists()


def test_a_name_that_is_empty_or_too_long_is_refused_with_400(client: Client, agent: FakeAgent) -> None:
    item = workshop(instructor())
    assert "1 to 40 characters" in refusal(join(client, item.join_code, "   "), 400)
    assert "1 to 40 characters" in refusal(join(client, item.join_code, "x" * 41), 400)


def test_a_refusal_is_in_korean_for_a_korean_browser(client: Client, agent: FakeAgent) -> None:
    item = workshop(instructor(), capacity=1)
    joined_session(join(client, item.join_code, "Min"))
    sentence = refusal(join(Client(), item.join_code, "Jun", language="ko"), 409)
    assert sentence == "이 워크숍은 정원 1명이 모두 찼습니다. 강사에게 자리를 요청하세요."
    assert "워크숍 참여" in client.get("/join", headers={"Accept-Language": "ko"}).content.decode()


def test_a_full_host_refuses_a_join_with_503_and_its_sentence(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    item = workshop(instructor())
    configure(settings, max_sessions=1)
    joined_session(join(client, item.join_code, "Min"))
    response = join(Client(), item.join_code, "Jun")
    assert "All playgrounds are in use" in refusal(response, 503) and response["Retry-After"] == "30"
    assert Learner.objects.count() == 1


def test_learners_join_on_this_machine_where_their_room_was_prepared_until_it_is_full_then_on_another_host(
    agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, host_max_sandboxes=2)
    roomy = SandboxHost.objects.create(name="roomy", address="127.0.0.1:9", limit=50, last_seen=timezone.now())
    item = workshop(instructor())
    placed = [joined_session(join(Client(), item.join_code, name)).host for name in ("A", "B", "C")]
    assert placed == [None, None, roomy]  # not by most room: the prepared sandboxes are here
    started = Client().post("/api/sessions/", {"image": "busybox"}, content_type="application/json")
    assert started.status_code == 201, started.content
    assert Session.objects.get(pk=started.json()["id"]).host == roomy  # an ordinary start: most room


def test_a_class_behind_one_address_is_not_held_back_by_the_per_address_session_limits(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, limit_exempt=[], max_sessions_per_address=1, creations_per_minute=1)
    item = workshop(instructor())
    for name in ("A", "B", "C"):
        joined_session(join(Client(), item.join_code, name))
    assert Session.objects.filter(state=Session.State.ACTIVE).count() == 3


def test_joins_over_the_rate_of_an_address_get_429_with_retry_after(
    client: Client, agent: FakeAgent, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(settings, limit_exempt=[], workshop_joins_per_minute=2)
    seen: list[tuple[str, str | None, int]] = []

    def window(prefix: str, address: str | None, limit: int, mark: str) -> int:
        """Redis's sliding window, played: the third attempt within the minute waits 17 s."""
        seen.append((prefix, address, limit))
        return 0 if len(seen) <= limit else 17

    monkeypatch.setattr(ratelimit, "allowed", window)
    item = workshop(instructor())
    joined_session(join(client, item.join_code, "A"))
    joined_session(join(Client(), item.join_code, "B"))
    response = join(Client(), item.join_code, "C")
    assert "wait 17 seconds" in refusal(response, 429) and response["Retry-After"] == "17"
    assert seen[0] == (joining.RATE_PREFIX, "127.0.0.1", 2)
    assert Learner.objects.count() == 2


def test_joins_go_through_when_redis_does_not_answer(client: Client, agent: FakeAgent, settings: Settings) -> None:
    configure(settings, limit_exempt=[], workshop_joins_per_minute=1)  # the fast tests' Redis is a dead socket
    item = workshop(instructor())
    joined_session(join(client, item.join_code, "A"))
    joined_session(join(Client(), item.join_code, "B"))


# ---- the idle policy ----------------------------------------------------------------------------


def test_the_reaper_leaves_an_idle_workshop_session_but_ends_an_idle_ordinary_one(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    item = workshop(instructor())
    kept = joined_session(join(client, item.join_code, "Min"))
    ordinary = Session.objects.get(pk=client.post("/api/sessions/", "{}", content_type="application/json").json()["id"])
    long_ago = timezone.now() - timedelta(seconds=settings.PLAYGROUND.idle_timeout + 60)
    Session.objects.filter(pk__in=[kept.pk, ordinary.pk]).update(last_activity=long_ago)
    assert tasks.reap_expired() == 1
    ordinary.refresh_from_db()
    kept.refresh_from_db()
    assert (ordinary.state, ordinary.ended_reason) == (Session.State.ENDED, EndReason.IDLE)
    assert kept.state == Session.State.ACTIVE


def test_a_workshop_with_idle_reaping_has_its_idle_sessions_ended_and_every_session_ends_at_its_end(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    reaping = workshop(instructor(), idle_reaping=True)
    idle = joined_session(join(client, reaping.join_code, "Min"))
    assert idle.idle_exempt_until is None
    kept = workshop(instructor("bob"))
    ending = joined_session(join(Client(), kept.join_code, "Jun"))
    long_ago = timezone.now() - timedelta(seconds=settings.PLAYGROUND.idle_timeout + 60)
    Session.objects.filter(pk=idle.pk).update(last_activity=long_ago)
    Session.objects.filter(pk=ending.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # the end came
    assert tasks.reap_expired() == 2
    assert Session.objects.get(pk=idle.pk).ended_reason == EndReason.IDLE
    assert Session.objects.get(pk=ending.pk).ended_reason == EndReason.EXPIRED
