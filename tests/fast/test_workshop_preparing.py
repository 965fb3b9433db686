"""Preparing the room (playground/workshops/preparing.py): the beat task reserves pooled sandboxes
for the learners still to join, and the instructor's list says how many are ready; against the
fake agent (docs/workshops.md, "Preparing the room")."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.labs.models import Lab
from playground.workshops import preparing
from tests.fakeagent import FakeAgent
from tests.fast.test_workshops import configure, instructor, join, joined_session, workshop

pytestmark = pytest.mark.django_db


def starting_in(minutes: float, **fields: Any) -> dict[str, Any]:
    """A workshop's times: starting in ``minutes`` (negative: running since), for two hours."""
    start = timezone.now() + timedelta(minutes=minutes)
    return {"starts_at": start, "ends_at": start + timedelta(hours=2), **fields}


def reservations(agent: FakeAgent) -> list[dict[str, Any]]:
    return [r for r in agent.requests if r.get("op") == "reserve_warm"]


def test_workshops_starting_soon_or_running_reserve_their_places_left_per_image(
    client: Client, agent: FakeAgent
) -> None:
    owner = instructor()
    Lab.objects.create(slug="docker-101", language="ko", title="도커 시작하기", image="debian")
    running = workshop(owner, capacity=3, **starting_in(-30))
    workshop(owner, capacity=5, **starting_in(10))  # within the default 15 minutes
    workshop(owner, capacity=4, lab_slug="docker-101", lab_language="ko", **starting_in(5))  # the lab's image
    workshop(owner, capacity=7, **starting_in(20))  # too far ahead
    workshop(owner, capacity=9, starts_at=timezone.now() - timedelta(hours=3), ends_at=timezone.now())  # over
    joined_session(join(client, running.join_code, "Ann"))
    assert preparing.prepare_workshops() == {"busybox": 2 + 5, "debian": 4}
    assert reservations(agent)[-1] == {
        "op": "reserve_warm",
        "holder": "workshops",
        "sizes": {"busybox": 7, "debian": 4},
        "ttl": 90,
    }
    assert agent.warm_reserved == {"workshops": {"busybox": 7, "debian": 4}}


def test_the_reservation_is_capped_by_the_warm_max_earliest_start_first(settings: Settings, agent: FakeAgent) -> None:
    configure(settings, workshop_warm_max=6, workshop_prepare_minutes=60)
    owner = instructor()
    workshop(owner, capacity=4, image="debian", **starting_in(30))
    workshop(owner, capacity=4, **starting_in(10))
    assert preparing.prepare_workshops() == {"busybox": 4, "debian": 2}


def test_no_workshop_to_prepare_drops_the_reservation(agent: FakeAgent) -> None:
    agent.warm_reserved["workshops"] = {"busybox": 3}  # an earlier pass
    workshop(instructor(), capacity=3, **starting_in(60))
    assert preparing.prepare_workshops() == {}
    assert reservations(agent)[-1]["sizes"] == {} and agent.warm_reserved == {}


def test_a_full_workshop_and_one_whose_lab_has_gone_want_nothing(client: Client, agent: FakeAgent) -> None:
    owner = instructor()
    full = workshop(owner, capacity=1, **starting_in(-5))
    joined_session(join(client, full.join_code, "Ann"))
    workshop(owner, capacity=3, lab_slug="gone", **starting_in(5))
    assert preparing.prepare_workshops() == {}


def test_a_workshop_whose_image_the_host_lacks_does_not_stop_the_others(
    agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    owner = instructor()
    gone = workshop(owner, capacity=3, image="alpine", **starting_in(5))
    workshop(owner, capacity=2, **starting_in(10))
    with caplog.at_level(logging.WARNING, logger="playground.workshops"):
        assert preparing.prepare_workshops() == {"busybox": 2}
    assert f"workshop {gone.pk} is not prepared: the sandbox host has no image alpine" in caplog.text


def test_an_agent_that_does_not_answer_is_logged_not_raised(
    settings: Settings, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    configure(settings, agent_socket=tmp_path / "nobody.sock")
    workshop(instructor(), capacity=3, **starting_in(5))
    with caplog.at_level(logging.ERROR, logger="playground.workshops"):
        assert preparing.prepare_workshops() == {}
    assert "cannot reserve pooled sandboxes for the workshops: " in caplog.text


def test_the_list_says_how_many_sandboxes_are_ready_for_each_workshop_being_prepared(
    client: Client, agent: FakeAgent
) -> None:
    owner = instructor()
    first = workshop(owner, title="First", capacity=3, **starting_in(-10))
    workshop(owner, title="Second", capacity=4, **starting_in(5))
    workshop(owner, title="Later", capacity=4, **starting_in(90))
    agent.warm_ready = {"busybox": 5}
    joined_session(join(client, first.join_code, "Ann"))
    client.force_login(owner)
    asked = len(agent.requests)
    page = client.get("/workshops/").content.decode()
    assert [r["op"] for r in agent.requests[asked:]].count("warm") == 1  # one request for the page
    assert "ready: 2 of 2 sandboxes" in page  # First: its two places left, served first
    assert "ready: 3 of 4 sandboxes" in page  # Second: what is left of the five
    assert page.count("sandboxes</span>") == 2  # Later is not prepared yet


def test_the_list_says_so_when_the_agent_does_not_answer(client: Client, settings: Settings, tmp_path: Any) -> None:
    configure(settings, agent_socket=tmp_path / "nobody.sock")
    owner = instructor()
    workshop(owner, capacity=3, **starting_in(5))
    client.force_login(owner)
    response = client.get("/workshops/", headers={"Accept-Language": "ko"})
    assert response.status_code == 200
    assert "준비 상태: 알 수 없음" in response.content.decode()
