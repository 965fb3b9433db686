"""Channel-layer events are best effort: an unreachable Redis never fails the request or task sending them."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid

import pytest
from django.test import override_settings

from playground.sandboxes import events
from playground.sandboxes.models import EndReason
from tests.stack import free_port

DEAD_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
    }
}


@override_settings(CHANNEL_LAYERS=DEAD_REDIS)
def test_telling_viewers_while_redis_is_down_logs_a_warning_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="playground.events"):
        events.session_ended(uuid.uuid4(), "deleted")
    assert "could not send session.ended" in caplog.text
    assert "viewers will read it from the database" in caplog.text


def test_every_end_reason_has_its_own_sentence_for_the_page() -> None:
    generic = events.end_message("no_such_reason")
    for reason in EndReason.values:
        sentence = events.end_message(reason)
        assert sentence != generic, reason
        assert sentence.endswith("."), reason


def test_the_session_ended_event_carries_the_reason_and_its_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, object]] = []
    monkeypatch.setattr(events, "_send", lambda group, event: sent.append((group, event)))
    session_id = uuid.uuid4()
    events.session_ended(session_id, "idle")
    assert sent == [
        (
            events.session_group(session_id),
            {"type": "session.ended", "reason": "idle", "message": events.end_message("idle")},
        )
    ]


class LoopNoting:
    """A channel layer that notes the event loop each send runs on, and hangs when told to."""

    def __init__(self, hang: bool = False) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.hang = hang

    async def group_send(self, group: str, message: object) -> None:
        self.loops.append(asyncio.get_running_loop())
        if self.hang:
            await asyncio.Event().wait()


@pytest.fixture
def noting(monkeypatch: pytest.MonkeyPatch) -> LoopNoting:
    layer = LoopNoting()
    monkeypatch.setattr(events, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(events, "_own_loop", None)
    return layer


def test_outside_any_loop_each_send_gets_a_new_loop_until_the_process_sends_through_its_own(
    noting: LoopNoting,
) -> None:
    events.instance_status(uuid.uuid4(), "running")
    events.instance_status(uuid.uuid4(), "running")
    assert noting.loops[0] is not noting.loops[1]  # so the channel layer connected to Redis twice
    events.send_through_own_loop()
    for _ in range(3):
        events.instance_status(uuid.uuid4(), "running")
    assert noting.loops[2] is noting.loops[3] is noting.loops[4] and noting.loops[2].is_running()


def test_a_forked_child_sends_through_a_loop_of_its_own(noting: LoopNoting) -> None:
    events.send_through_own_loop()
    events.lab_step(uuid.uuid4(), 1)  # the parent's loop, and its thread, exist before the fork
    child = os.fork()
    if child == 0:  # the parent's thread does not run here: a send to its loop would never end
        try:
            events.lab_step(uuid.uuid4(), 2)
            os._exit(0 if len(noting.loops) == 2 and noting.loops[1] is not noting.loops[0] else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_send_through_the_own_loop_that_hangs_is_given_up_and_logged(
    noting: LoopNoting, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    noting.hang = True
    monkeypatch.setattr(events, "SEND_TIMEOUT", 0.2)
    events.send_through_own_loop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="playground.events"):
        events.lab_step(uuid.uuid4(), 3)
    assert time.monotonic() - started < 2
    assert "could not send session.lab_step" in caplog.text


@override_settings(CHANNEL_LAYERS=DEAD_REDIS)
def test_a_worker_process_telling_viewers_while_redis_is_down_logs_a_warning_and_returns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(events, "_own_loop", events.OwnLoop())
    with caplog.at_level(logging.WARNING, logger="playground.events"):
        events.session_ended(uuid.uuid4(), "deleted")
    assert "could not send session.ended" in caplog.text
