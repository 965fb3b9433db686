"""Channel-layer events are best effort: an unreachable Redis never fails the request or task sending them."""

from __future__ import annotations

import logging
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
