"""The terminal websocket, through Channels' WebsocketCommunicator against the real ASGI application
and a fake agent whose terminal echoes its input: who may connect, and what reaches the terminal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from pytest_django import Settings

from playground.asgi import application
from playground.sandboxes import consumers, tasks
from playground.sandboxes.models import Instance, Session
from tests.fakeagent import BusyAgent, FakeAgent, FreeingAgent, SlowAgent
from tests.fakelayer import LosingLayer
from tests.waiting import eventually_async

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads the database from another thread

TIMEOUT = 5.0


class Started:
    """A session as the API starts it: the session, its secret key, and its instance's sandbox id."""

    def __init__(self) -> None:
        self.session, self.key = Session.start("busybox", 3600, None)
        self.sandbox_id = self.session.instances.get().sandbox_id

    def path(self, key: str | None = None, instance: str = "node1") -> str:
        query = f"?key={key}" if key else ""
        return f"/ws/sessions/{self.session.id}/{instance}/{query}"

    def provision(self) -> None:
        """Run the provisioning task, as the worker would; from any thread."""
        try:
            tasks.provision_instance(str(self.session.instances.get().pk))
        finally:
            connections.close_all()  # this thread's connection, before the test database is flushed


@pytest.fixture
def running(agent: FakeAgent) -> Started:
    """A session whose sandbox the agent has created."""
    started = Started()
    started.provision()
    return started


@pytest.fixture
def slow_agent(settings: Settings) -> Iterator[SlowAgent]:
    with SlowAgent.running(settings.PLAYGROUND.agent_socket) as agent:
        yield agent


@pytest.fixture
def busy_agent(settings: Settings) -> Iterator[BusyAgent]:
    with BusyAgent.running(settings.PLAYGROUND.agent_socket) as agent:
        yield agent


async def waiting_for_provisioning() -> tuple[Started, WebsocketCommunicator]:
    """A new session not provisioned yet, and a viewer told it is being provisioned."""
    started = await asyncio.to_thread(Started)
    communicator = await connected(started.path(started.key))
    event = await next_event(communicator, "status")
    assert event["state"] == "provisioning", event
    return started, communicator


async def provision_beside(started: Started) -> None:
    """Run the provisioning task in a worker thread while the consumer runs; the task's events
    reach the in-memory channel layer on this event loop (``async_to_sync`` inside ``sync_to_async``)."""
    await sync_to_async(started.provision, thread_sensitive=False)()


OPEN: list[WebsocketCommunicator] = []  # every viewer connected() made, disconnected after its test


@pytest.fixture(autouse=True)
async def viewers_disconnected() -> AsyncIterator[None]:
    """After each test, disconnect each viewer still connected (a failing test leaves its viewers
    open), so that none outlives its test's loop."""
    try:
        yield
    finally:
        while OPEN:
            communicator = OPEN.pop()
            if not communicator.future.done():
                await communicator.disconnect()


async def connected(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    OPEN.append(communicator)
    accepted, _ = await communicator.connect(TIMEOUT)
    assert accepted, "the consumer did not accept the connection"
    return communicator


async def next_event(communicator: WebsocketCommunicator, type_: str) -> dict[str, Any]:
    """The next JSON event of ``type_``, skipping others (output included)."""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        assert message["type"] == "websocket.send", f"closed while waiting for a {type_!r} event: {message}"
        if message.get("text") is not None and (event := json.loads(message["text"]))["type"] == type_:
            return event


async def output(communicator: WebsocketCommunicator, size: int) -> bytes:
    """``size`` bytes of terminal output (the payloads of output frames), skipping events."""
    received = b""
    while len(received) < size:
        message = await communicator.receive_output(TIMEOUT)
        assert message["type"] == "websocket.send", f"closed while waiting for output: {message}"
        data = message.get("bytes")
        if data is not None:
            assert data[:1] == b"\x00", f"an output frame starts with opcode 0: {data!r}"
            received += data[1:]
    return received


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the consumer closed with (events before the close are skipped)."""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        if message["type"] == "websocket.close":
            return int(message["code"])


async def attached(started: Started) -> WebsocketCommunicator:
    communicator = await connected(started.path(started.key))
    event = await next_event(communicator, "status")
    assert event["state"] == "running", event
    return communicator


# -- who may connect --------------------------------------------------------------------------
async def test_a_connection_without_a_key_is_closed_with_4403(running: Started) -> None:
    communicator = await connected(running.path())
    assert await close_code(communicator) == 4403


async def test_a_connection_with_a_wrong_key_is_closed_with_4403(running: Started) -> None:
    communicator = await connected(running.path("not-the-key"))
    assert await close_code(communicator) == 4403


async def test_a_connection_with_another_sessions_key_is_closed_with_4403(running: Started) -> None:
    other = await asyncio.to_thread(Started)
    communicator = await connected(running.path(other.key))
    assert await close_code(communicator) == 4403


async def test_a_korean_viewer_is_told_in_korean_why_its_session_ended(running: Started) -> None:
    await asyncio.to_thread(running.session.claim_end, "expired")
    korean = await connected(running.path(running.key), headers=[(b"accept-language", b"ko-KR,ko;q=0.9")])
    by_switch = await connected(running.path(running.key), headers=[(b"cookie", b"playground_language=ko")])
    english = await connected(running.path(running.key))
    for communicator in (korean, by_switch):
        event = await next_event(communicator, "exit")
        assert (event["reason"], event["message"]) == ("expired", "이 세션의 시간이 다 되었습니다."), event
    assert (await next_event(english, "exit"))["message"] == "This session's time ran out."


async def test_a_connection_to_an_unknown_instance_is_closed_with_4404(running: Started) -> None:
    communicator = await connected(running.path(running.key, instance="node9"))
    assert await close_code(communicator) == 4404


async def test_a_connection_to_an_ended_session_is_told_why_and_closed_with_4410(running: Started) -> None:
    await asyncio.to_thread(running.session.claim_end, "deleted")
    communicator = await connected(running.path(running.key))
    event = await next_event(communicator, "exit")
    assert event["reason"] == "deleted", event
    assert await close_code(communicator) == 4410


async def test_a_session_ending_before_its_viewer_joined_its_events_is_told_why_and_closed_with_4410(
    running: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewer attaches before it joins the session's event groups; an end announced in between
    does not reach it, and the activity record it makes at connect finds it."""
    load = consumers.load

    async def load_then_end(session_hex: str, name: str) -> Instance | None:
        instance = await load(session_hex, name)
        await asyncio.to_thread(running.session.claim_end, "deleted")  # ended in the database, not announced
        return instance

    monkeypatch.setattr(consumers, "load", load_then_end)
    communicator = await connected(running.path(running.key))
    event = await next_event(communicator, "exit")
    assert event["reason"] == "deleted", event
    assert await close_code(communicator) == 4410


async def test_a_viewer_connecting_records_the_sessions_activity(running: Started) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    await asyncio.to_thread(Session.objects.filter(pk=running.session.pk).update, last_activity=long_ago)
    await attached(running)
    await eventually_async(
        lambda: asyncio.to_thread(
            lambda: Session.objects.values_list("last_activity", flat=True).get(pk=running.session.pk)
        ),
        "the session's last activity recorded at connect",
        TIMEOUT,
        until=lambda last: last > long_ago,
    )


# -- what reaches the terminal ----------------------------------------------------------------
async def test_input_frames_reach_the_terminal_in_the_order_they_were_sent(running: Started, agent: FakeAgent) -> None:
    communicator = await attached(running)
    keys = [f"{n} ".encode() for n in range(50)]
    for key in keys:
        await communicator.send_to(bytes_data=b"\x00" + key)
    echoed = await output(communicator, len(b"".join(keys)))
    assert echoed == b"".join(keys), "the echo came back out of order"
    assert agent.terminal(running.sandbox_id).input == b"".join(keys), "the terminal got the input out of order"
    await communicator.disconnect()


async def test_a_resize_frame_reaches_the_terminal_as_its_size(running: Started, agent: FakeAgent) -> None:
    communicator = await attached(running)
    await communicator.send_to(bytes_data=b'\x01{"cols": 132, "rows": 43}')
    await communicator.send_to(bytes_data=b"\x00.")  # after the resize, in order: a marker
    await output(communicator, 1)
    assert agent.terminal(running.sandbox_id).sizes == [(132, 43)]
    await communicator.disconnect()


async def test_output_is_held_while_paused_and_comes_after_resume(running: Started) -> None:
    communicator = await attached(running)
    await communicator.send_to(bytes_data=b"\x02")
    await communicator.send_to(bytes_data=b"\x00typed while paused")
    assert await communicator.receive_nothing(0.3), "output came while the browser had paused"
    await communicator.send_to(bytes_data=b"\x03")
    assert await output(communicator, 18) == b"typed while paused"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"text": "ls"}, "text_frame"),
        ({"bytes": b"\x09x"}, "bad_opcode"),
        ({"bytes": b""}, "bad_opcode"),
        ({"bytes": b"\x01{not json"}, "bad_resize"),
        ({"bytes": b'\x01{"cols": "wide"}'}, "bad_resize"),
    ],
    ids=["text", "unknown-opcode", "empty", "resize-not-json", "resize-without-rows"],
)
async def test_a_malformed_frame_gets_an_error_event_and_the_terminal_stays_connected(
    running: Started, frame: dict[str, Any], code: str
) -> None:
    communicator = await attached(running)
    await communicator.send_input({"type": "websocket.receive", **frame})  # send_to refuses an empty frame
    event = await next_event(communicator, "error")
    assert event["code"] == code, event
    await communicator.send_to(bytes_data=b"\x00still here")
    assert await output(communicator, 10) == b"still here", "the connection did not stay usable"
    await communicator.disconnect()


# -- a sandbox still being created --------------------------------------------------------------
async def test_input_typed_while_a_slow_agent_creates_the_sandbox_arrives_once_it_runs(
    slow_agent: SlowAgent,
) -> None:
    started, communicator = await waiting_for_provisioning()
    await communicator.send_to(bytes_data=b"\x00early ")
    await communicator.send_to(bytes_data=b"\x00keys")
    await provision_beside(started)
    assert (await next_event(communicator, "status"))["state"] == "running"
    assert await output(communicator, 10) == b"early keys"
    await communicator.disconnect()


async def test_a_viewer_of_a_node_still_queued_for_the_worker_gets_its_shell_before_the_worker_runs(
    agent: FakeAgent,
) -> None:
    # A class joining at once queues fifty provisioning tasks: the viewer asks the agent itself.
    started, communicator = await waiting_for_provisioning()
    assert (await next_event(communicator, "status"))["state"] == "running"  # attached
    await communicator.send_to(bytes_data=b"\x00before the worker")
    assert await output(communicator, 17) == b"before the worker"
    assert agent.ops().count("create") == 1
    # Recorded running by the viewer, as the worker's task would have (the API's node actions need it).
    state = sync_to_async(Instance.objects.values_list("state", flat=True).get)
    await eventually_async(
        lambda: state(session=started.session),
        "the node recorded running",
        5,
        until=lambda found: found == Instance.State.RUNNING,
    )
    await provision_beside(started)  # then the worker's task finds it claimed, and does nothing
    assert await state(session=started.session) == Instance.State.RUNNING
    assert agent.ops().count("create") == 1
    await communicator.disconnect()


async def test_a_viewer_waiting_for_a_sandbox_a_full_host_refused_is_told_so_and_closed_with_4410(
    busy_agent: BusyAgent,
) -> None:
    started, communicator = await waiting_for_provisioning()
    await provision_beside(started)
    assert (await next_event(communicator, "status"))["state"] == "failed"
    assert (await next_event(communicator, "exit"))["reason"] == "out_of_resources"
    assert await close_code(communicator) == 4410


async def test_a_viewer_waiting_while_a_full_host_refuses_a_create_that_is_tried_again_gets_its_shell(
    settings: Settings,
) -> None:
    # Another session has ended but its sandbox is not destroyed yet: the worker asks again.
    ending, _key = await asyncio.to_thread(Session.start, "busybox", 3600, None)
    await sync_to_async(ending.instances.update)(state=Instance.State.RUNNING)
    await sync_to_async(Session.objects.filter(pk=ending.pk).update)(state=Session.State.ENDING)
    with FreeingAgent.running(settings.PLAYGROUND.agent_socket) as agent:
        started, communicator = await waiting_for_provisioning()
        await provision_beside(started)
        # refused once, then made: by the viewer's early create or by the worker's again (2 or 3 creates)
        assert agent.refused and agent.ops().count("create") >= 2, agent.ops()
        assert (await next_event(communicator, "status"))["state"] == "running"
        await communicator.send_to(bytes_data=b"\x00after the retry")
        assert await output(communicator, 15) == b"after the retry"
        await communicator.disconnect()


async def test_a_viewer_whose_agent_is_gone_is_told_and_closed_with_4503_to_reconnect(settings: Settings) -> None:
    with FakeAgent.running(settings.PLAYGROUND.agent_socket):
        started = await asyncio.to_thread(Started)
        await provision_beside(started)
    communicator = await connected(started.path(started.key))
    event = await next_event(communicator, "error")
    assert event["code"] == "agent_unavailable", event
    assert await close_code(communicator) == 4503


# -- Redis going away -------------------------------------------------------------------------
def last_activity(started: Started) -> Any:
    return Session.objects.values_list("last_activity", flat=True).get(pk=started.session.pk)


async def test_a_viewer_whose_events_are_lost_with_redis_is_told_closed_with_4503_and_stops_keeping_its_session_active(
    running: Started, settings: Settings
) -> None:
    """Redis restarting fails the channel layer's receive. The viewer is told and closed to
    reconnect; from then on it records no activity, so its session can become idle (an orphaned
    viewer had kept its session active until it expired)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.fakelayer.LosingLayer"}}
    settings.PLAYGROUND = replace(settings.PLAYGROUND, idle_timeout=4)  # activity recorded every second
    layer = get_channel_layer()
    assert isinstance(layer, LosingLayer)
    communicator = await attached(running)
    layer.lose()
    event = await next_event(communicator, "error")
    assert event["code"] == "events_unavailable", event
    assert await close_code(communicator) == 4503
    await communicator.wait(TIMEOUT)  # the consumer has returned: it released what it held
    left_at = await asyncio.to_thread(last_activity, running)  # recorded once, as the viewer left
    await asyncio.sleep(2.5)
    assert await asyncio.to_thread(last_activity, running) == left_at, "the closed viewer still records activity"
