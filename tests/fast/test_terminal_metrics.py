"""What the terminal websocket counts (docs/metrics.md): open viewers, bytes each way, and a
session's first prompt, once, however many viewers it has."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from playground.sandboxes.models import Session
from tests.fast.test_terminal import Started, attached, output, running, viewers_disconnected  # noqa: F401
from tests.waiting import eventually_async

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads the database from another thread


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_viewers_bytes_and_the_first_prompt_once_are_counted(running: Started) -> None:  # noqa: F811
    prompts, opened = value("playground_session_first_prompt_seconds_count"), value("playground_terminals_open")
    typed = value("playground_terminal_bytes_total", direction="in")
    shown = value("playground_terminal_bytes_total", direction="out")
    viewers = []
    for word in (b"hello", b"again"):  # a second viewer (a reload, another tab) is no new prompt
        viewer = await attached(running)
        viewers.append(viewer)
        await viewer.send_to(bytes_data=b"\x00" + word)
        assert word in await output(viewer, len(word))
        await eventually_async(
            sync_to_async(lambda: Session.objects.get(pk=running.session.pk).first_prompt_at),
            "the session's first prompt recorded",
        )
    assert value("playground_terminals_open") == opened + 2
    assert value("playground_session_first_prompt_seconds_count") == prompts + 1
    assert value("playground_terminal_bytes_total", direction="in") == typed + 10
    assert value("playground_terminal_bytes_total", direction="out") >= shown + 10
    for viewer in viewers:
        await viewer.disconnect()
    assert value("playground_terminals_open") == opened
