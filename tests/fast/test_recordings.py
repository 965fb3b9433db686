"""Recordings of the learners' terminals, the web tier's side (playground/workshops/recordings.py,
recordingviews.py; docs/workshops.md, Recordings): learners' nodes are created recorded, lab steps
become markers, the owner, a superuser and the learner alone open a recording, and the retention
task deletes old ones."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.celery import app as celery_app
from playground.labs.models import Progress
from playground.labs.signals import progress_changed
from playground.sandboxes.models import Session
from playground.workshops import dashboard, recordings
from playground.workshops.models import Learner
from sandbox.wire import asciicast
from tests.fakeagent import FakeAgent
from tests.fast.test_workshops import configure, instructor, join, joined_session, workshop

pytestmark = pytest.mark.django_db

CAST = b'{"version": 2, "width": 80, "height": 24, "timestamp": 1800000000, "title": "node1, terminal 0"}\n'
CAST += b'[0.5, "o", "$ whoami\\r\\nroot\\r\\n"]\n'


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    configure(settings, data_dir=tmp_path)
    return tmp_path


def recorded(data_dir: Path, session: Session, name: str = "node1-0.cast") -> Path:
    """Put a recording of ``session`` where the agent would have written it."""
    directory = asciicast.recordings_dir(data_dir) / session.id.hex
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(CAST)
    return path


def test_a_learners_node_is_created_recorded_and_a_landing_pages_session_is_not(
    client: Client, agent: FakeAgent
) -> None:
    item = workshop(instructor())
    joined_session(join(client, item.join_code, "Min"))
    assert Client().post("/api/sessions/", {"image": "busybox"}, content_type="application/json").status_code == 201
    creates = [r for r in agent.requests if r["op"] == "create"]
    assert [r.get("record") for r in creates] == [True, None]


def test_a_learners_lab_steps_and_checks_become_markers_in_their_recordings(
    client: Client, agent: FakeAgent, django_capture_on_commit_callbacks: object
) -> None:
    item = workshop(instructor())
    session = joined_session(join(client, item.join_code, "Min"))
    progress = Progress(session=session, current=3)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        progress_changed.send(sender=Progress, progress=progress, kind="open", step=3, passed=None)
        progress_changed.send(sender=Progress, progress=progress, kind="check", step=3, passed=True)
        progress_changed.send(sender=Progress, progress=progress, kind="check", step=4, passed=False)
    (sandbox,) = agent.sandboxes.values()
    assert sandbox.markers == ["step 3", "check step 3: passed", "check step 4: failed"]


def test_a_marker_for_a_session_that_is_no_learners_asks_nothing_of_the_agent(
    agent: FakeAgent, django_capture_on_commit_callbacks: object
) -> None:
    created = Client().post("/api/sessions/", {"image": "busybox"}, content_type="application/json").json()
    session = Session.objects.get(pk=created["id"])
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        progress_changed.send(sender=Progress, progress=Progress(session=session), kind="open", step=2, passed=None)
    assert "mark" not in agent.ops()


def test_the_workshops_owner_replays_and_downloads_a_learners_recording_and_another_instructor_cannot(
    client: Client, agent: FakeAgent, data_dir: Path
) -> None:
    alice = instructor("alice")
    item = workshop(alice)
    session = joined_session(join(Client(), item.join_code, "Min"))
    recorded(data_dir, session)
    learner = Learner.objects.get()
    base = f"/workshops/{item.pk}/learners/{learner.pk}/recordings/"
    client.force_login(instructor("bob"))
    assert client.get(base).status_code == 404
    assert client.get(f"{base}node1-0.cast").status_code == 404
    client.force_login(alice)
    page = client.get(base).content.decode()
    assert f'data-cast="{base}node1-0.cast"' in page and "node1, terminal 0" in page and "replay.js" in page
    download = client.get(f"{base}node1-0.cast")
    assert download.status_code == 200 and b"".join(download.streaming_content) == CAST  # type: ignore[attr-defined]
    assert download["Content-Type"] == "application/x-asciicast"
    expected = f'attachment; filename="workshop-{item.join_code}-learner-{learner.pk}-node1-0.cast"'
    assert download["Content-Disposition"] == expected
    assert client.get(f"{base}node1-1.cast").status_code == 404
    assert client.get(f"{base}..%2Fsecret").status_code == 404
    client.force_login(instructor("root", is_superuser=True))
    assert client.get(f"{base}node1-0.cast").status_code == 200


def test_an_anonymous_visitor_is_sent_to_sign_in_for_a_learners_recordings(
    client: Client, agent: FakeAgent, data_dir: Path
) -> None:
    item = workshop(instructor())
    joined_session(join(Client(), item.join_code, "Min"))
    response = client.get(f"/workshops/{item.pk}/learners/{Learner.objects.get().pk}/recordings/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_learner_opens_their_own_recordings_and_not_another_learners(agent: FakeAgent, data_dir: Path) -> None:
    item = workshop(instructor())
    min_browser, jun_browser = Client(), Client()
    mine = joined_session(join(min_browser, item.join_code, "Min"))
    theirs = joined_session(join(jun_browser, item.join_code, "Jun"))
    recorded(data_dir, mine)
    recorded(data_dir, theirs)
    page = min_browser.get(f"/s/{mine.id}/recordings/")
    assert page.status_code == 200 and f'data-cast="/s/{mine.id}/recordings/node1-0.cast"' in page.content.decode()
    download = min_browser.get(f"/s/{mine.id}/recordings/node1-0.cast")
    assert download["Content-Disposition"] == 'attachment; filename="node1-0.cast"'
    assert b"".join(download.streaming_content) == CAST  # type: ignore[attr-defined]
    assert min_browser.get(f"/s/{theirs.id}/recordings/").status_code == 403
    refused = min_browser.get(f"/s/{theirs.id}/recordings/node1-0.cast")
    assert refused.status_code == 403 and "does not hold that session" in refused.content.decode()
    assert Client().get(f"/s/{mine.id}/recordings/node1-0.cast").status_code == 403
    assert min_browser.get("/s/not-a-session/recordings/").status_code == 404
    assert min_browser.get(f"/s/{mine.id}/recordings/").status_code == 200


def test_a_session_without_recordings_says_so(agent: FakeAgent, data_dir: Path) -> None:
    browser = Client()
    session = joined_session(join(browser, workshop(instructor()).join_code, "Min"))
    page = browser.get(f"/s/{session.id}/recordings/", headers={"Accept-Language": "ko"})
    assert page.status_code == 200 and "아직 녹화된 터미널이 없습니다" in page.content.decode()


def test_recordings_are_deleted_once_their_workshop_ended_longer_ago_than_the_retention(
    agent: FakeAgent, data_dir: Path, settings: Settings
) -> None:
    configure(settings, recording_retention_days=14)
    now = timezone.now()
    old, recent = workshop(instructor("alice")), workshop(instructor("bob"))
    old_session = joined_session(join(Client(), old.join_code, "Min"))
    recent_session = joined_session(join(Client(), recent.join_code, "Jun"))
    orphan = joined_session(join(Client(), recent.join_code, "Ann"))
    for session in (old_session, recent_session, orphan):
        recorded(data_dir, session)
    type(old).objects.filter(pk=old.pk).update(ends_at=now - timedelta(days=15))
    type(recent).objects.filter(pk=recent.pk).update(ends_at=now - timedelta(days=13))
    Learner.objects.filter(session=orphan).delete()  # as when its workshop is deleted
    Session.objects.filter(pk=orphan.pk).update(state=Session.State.ENDED)
    assert recordings.delete_old(now) == 2
    left = sorted(p.name for p in asciicast.recordings_dir(data_dir).iterdir())
    assert left == [recent_session.id.hex]
    assert recordings.delete_old(now) == 0


def test_the_retention_task_runs_from_beat() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["delete-old-recordings"]
    celery_app.loader.import_default_modules()  # what a worker does at start: every app's tasks
    assert entry["task"] == "playground.workshops.tasks.delete_old_recordings"
    assert entry["task"] in celery_app.tasks


def test_the_dashboards_row_of_a_learner_links_their_recordings_page(
    client: Client, agent: FakeAgent, data_dir: Path
) -> None:
    alice = instructor("alice")
    item = workshop(alice)
    recorded(data_dir, joined_session(join(Client(), item.join_code, "Min")))
    (row,) = dashboard.load_rows(item, timezone.now())
    assert row["recordings"] == f"/workshops/{item.pk}/learners/{Learner.objects.get().pk}/recordings/"
    client.force_login(alice)
    assert "node1, terminal 0" in client.get(row["recordings"]).content.decode()
