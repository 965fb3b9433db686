"""An instructor watching a learner's terminal and taking it over (playground/workshops/watch.py),
through Channels' WebsocketCommunicator against the real ASGI application and a fake agent whose
terminal echoes its input to every viewer (docs/workshops.md, "Watching and taking over")."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from playground.workshops.models import Learner, Workshop
from tests.fakeagent import FakeAgent
from tests.fast.test_terminal import (  # noqa: F401 (viewers_disconnected: every viewer closed after its test)
    Started,
    attached,
    close_code,
    connected,
    next_event,
    output,
    viewers_disconnected,
)

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads the database from another thread

TAKE_OVER = json.dumps({"type": "takeover", "on": True})
GIVE_BACK = json.dumps({"type": "takeover", "on": False})


class Class:
    """Alice's workshop with Min, a learner whose session runs; Bob, another instructor."""

    def __init__(self) -> None:
        self.alice = User.objects.create_user(
            "alice", password="pw", is_staff=True, first_name="Alice", last_name="Kim"
        )
        self.bob = User.objects.create_user("bob", password="pw", is_staff=True)
        now = timezone.now()
        self.workshop = Workshop.objects.create(
            owner=self.alice,
            title="Docker day",
            image="busybox",
            capacity=10,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
        )
        self.min = Started()
        self.min.provision()
        Learner.objects.create(
            workshop=self.workshop, name="Min", pin_hash="-", session=self.min.session, sealed_key="-"
        )

    def watch_path(self, instance: str = "node1", query: str = "") -> str:
        return f"/ws/watch/{self.min.session.id}/{instance}/{query}"


def signed_in(user: User) -> list[tuple[bytes, bytes]]:
    """The cookie header of a browser where ``user`` signed in."""
    client = Client()
    client.force_login(user)
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())
    ]


@pytest.fixture
def klass(agent: FakeAgent) -> Class:
    return Class()


async def watching(klass: Class, user: User | None = None) -> WebsocketCommunicator:
    """Alice (or ``user``) watching Min's first terminal, attached."""
    headers = await sync_to_async(signed_in)(user or klass.alice)
    watcher = await connected(klass.watch_path(), headers)
    event = await next_event(watcher, "status")
    assert event["state"] == "running", event
    return watcher


async def refused(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[str, int]:
    """The error code and the close code a refused watcher gets."""
    watcher = await connected(path, headers)
    error = await next_event(watcher, "error")
    return error["code"], await close_code(watcher)


# -- read-only --------------------------------------------------------------------------------
async def test_an_instructor_sees_what_the_learner_types_and_their_own_input_is_dropped(
    klass: Class, agent: FakeAgent
) -> None:
    learner = await attached(klass.min)
    watcher = await watching(klass)
    await learner.send_to(bytes_data=b"\x00ls\r")
    assert await output(watcher, 3) == b"ls\r"
    await watcher.send_to(bytes_data=b"\x00rm -rf /\r")
    error = await next_event(watcher, "error")
    assert error["code"] == "read_only" and error["message"] == "read-only: take over to type"
    await watcher.send_to(bytes_data=b"\x00again")  # no second error in the same read-only spell
    await learner.send_to(bytes_data=b"\x00.")
    assert await output(learner, 4) == b"ls\r."
    assert agent.terminal(klass.min.sandbox_id).input == b"ls\r.", "a watcher's input reached the terminal"
    assert await output(watcher, 1) == b".", "the watcher got something other than the learner's echo"


async def test_a_watchers_resize_does_not_resize_the_learners_terminal(klass: Class, agent: FakeAgent) -> None:
    await attached(klass.min)
    watcher = await watching(klass)
    await watcher.send_to(bytes_data=b'\x01{"cols": 40, "rows": 10}')
    await watcher.send_to(text_data=TAKE_OVER)
    await watcher.send_to(bytes_data=b'\x01{"cols": 41, "rows": 11}')  # taken over: still not the size
    await watcher.send_to(bytes_data=b"\x00.")
    await output(watcher, 1)
    assert agent.terminal(klass.min.sandbox_id).sizes == [], "a watcher's window resized the learner's terminal"


# -- taking over ------------------------------------------------------------------------------
async def test_taking_over_lets_input_through_and_the_learner_is_told_who_types(klass: Class, agent: FakeAgent) -> None:
    learner = await attached(klass.min)
    watcher = await watching(klass)
    await watcher.send_to(text_data=TAKE_OVER)
    assert await next_event(watcher, "takeover") == {"type": "takeover", "on": True, "by": "Alice Kim"}
    assert await next_event(learner, "takeover") == {"type": "takeover", "on": True, "by": "Alice Kim"}
    await watcher.send_to(bytes_data=b"\x00docker ps\r")
    assert await output(learner, 10) == b"docker ps\r"
    assert agent.terminal(klass.min.sandbox_id).input == b"docker ps\r"


async def test_giving_back_tells_the_learner_and_input_is_dropped_again(klass: Class, agent: FakeAgent) -> None:
    learner = await attached(klass.min)
    watcher = await watching(klass)
    await watcher.send_to(text_data=TAKE_OVER)
    await next_event(learner, "takeover")
    await watcher.send_to(text_data=GIVE_BACK)
    assert await next_event(learner, "takeover") == {"type": "takeover", "on": False, "by": "Alice Kim"}
    await watcher.send_to(bytes_data=b"\x00x")
    assert (await next_event(watcher, "error"))["code"] == "read_only"
    assert agent.terminal(klass.min.sandbox_id).input == b""


async def test_a_watcher_that_disconnects_during_a_takeover_gives_the_terminal_back(klass: Class) -> None:
    learner = await attached(klass.min)
    watcher = await watching(klass)
    await watcher.send_to(text_data=TAKE_OVER)
    await next_event(learner, "takeover")
    await watcher.disconnect()
    assert await next_event(learner, "takeover") == {"type": "takeover", "on": False, "by": "Alice Kim"}


async def test_a_learner_connecting_during_a_takeover_is_told_at_once(klass: Class) -> None:
    watcher = await watching(klass)
    await watcher.send_to(text_data=TAKE_OVER)
    await next_event(watcher, "takeover")
    learner = await connected(klass.min.path(klass.min.key))
    assert await next_event(learner, "takeover") == {"type": "takeover", "on": True, "by": "Alice Kim"}


async def test_a_control_frame_that_is_not_one_gets_an_error_and_changes_nothing(klass: Class) -> None:
    watcher = await watching(klass)
    for frame in ("{", '{"type": "takeover"}', '{"type": "takeover", "on": "yes"}', '{"type": "other", "on": true}'):
        await watcher.send_to(text_data=frame)
        assert (await next_event(watcher, "error"))["code"] == "bad_control", frame
    await watcher.send_to(bytes_data=b"\x00x")
    assert (await next_event(watcher, "error"))["code"] == "read_only"


# -- who may watch ----------------------------------------------------------------------------
async def test_anyone_not_signed_in_is_refused_with_4403(klass: Class) -> None:
    assert await refused(klass.watch_path()) == ("watch_forbidden", 4403)


async def test_a_learners_own_key_does_not_open_the_watch_route(klass: Class) -> None:
    assert await refused(klass.watch_path(query=f"?key={klass.min.key}")) == ("watch_forbidden", 4403)
    cookie = [(b"cookie", f"{klass.min.session.cookie_name}={klass.min.key}".encode())]
    assert await refused(klass.watch_path(), cookie) == ("watch_forbidden", 4403)


async def test_a_signed_in_user_who_is_not_staff_is_refused_with_4403(klass: Class) -> None:
    visitor = await sync_to_async(User.objects.create_user)("eve", password="pw")
    assert await refused(klass.watch_path(), await sync_to_async(signed_in)(visitor)) == ("watch_forbidden", 4403)


async def test_another_instructor_is_refused_with_4403_and_a_superuser_may_watch(klass: Class) -> None:
    assert await refused(klass.watch_path(), await sync_to_async(signed_in)(klass.bob)) == ("watch_forbidden", 4403)
    root = await sync_to_async(User.objects.create_superuser)("root", password="pw")
    await watching(klass, root)


async def test_a_session_that_is_no_learners_cannot_be_watched(agent: FakeAgent) -> None:
    alice = await sync_to_async(User.objects.create_superuser)("root", password="pw")
    started = await sync_to_async(Started)()
    path = f"/ws/watch/{started.session.id}/node1/"
    assert await refused(path, await sync_to_async(signed_in)(alice)) == ("watch_forbidden", 4403)


async def test_an_unknown_session_or_node_is_refused_with_4404(klass: Class) -> None:
    headers = await sync_to_async(signed_in)(klass.alice)
    assert await refused(klass.watch_path(instance="node9"), headers) == ("unknown_session", 4404)
    assert await refused("/ws/watch/not-a-session/node1/", headers) == ("unknown_session", 4404)


async def test_watching_from_another_sites_page_is_refused(klass: Class) -> None:
    headers = [*await sync_to_async(signed_in)(klass.alice), (b"origin", b"https://evil.example")]
    assert await refused(klass.watch_path(), headers) == ("watch_forbidden", 4403)


# -- the watch page ---------------------------------------------------------------------------
def watch_url(klass: Class, workshop: Workshop | None = None) -> str:
    learner = Learner.objects.get(name="Min")
    return f"/workshops/{(workshop or klass.workshop).pk}/learners/{learner.pk}/watch/"


def test_the_watch_page_shows_the_learner_and_connects_to_their_terminal_read_only(klass: Class) -> None:
    client = Client()
    client.force_login(klass.alice)
    page = client.get(watch_url(klass))
    assert page.status_code == 200, page.content.decode()[:2000]
    html = page.content.decode()
    assert "Watching Min" in html and 'data-mode="read-only"' in html and ">Take over<" in html
    assert f'data-session="{klass.min.session.id.hex}"' in html
    assert '<script id="watch-node-names" type="application/json">["node1"]</script>' in html
    assert "data-watch-node" not in html, "one node: no node tabs"
    assert "/static/watch.js" in html


def test_the_watch_page_is_a_404_for_another_instructor_and_a_403_for_a_user_who_is_not_staff(klass: Class) -> None:
    client = Client()
    client.force_login(klass.bob)
    assert client.get(watch_url(klass)).status_code == 404
    theirs = Workshop.objects.create(
        owner=klass.bob, title="Bob's", capacity=5, starts_at=timezone.now(), ends_at=klass.workshop.ends_at
    )
    assert client.get(watch_url(klass, theirs)).status_code == 404, "a learner is watched through their own workshop"
    client.force_login(User.objects.create_user("eve", password="pw"))
    assert client.get(watch_url(klass)).status_code == 403
    anonymous = Client().get(watch_url(klass))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
