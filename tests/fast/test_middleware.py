"""The middleware chain under ASGI runs in the request's thread, not one thread hop per middleware."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.test import AsyncClient


async def test_a_request_crosses_to_a_thread_once_for_the_whole_middleware_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crossings: list[str] = []
    cross = SyncToAsync.__call__

    async def counted(self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        crossings.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await cross(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    response = await AsyncClient().get("/api/schema/")
    assert response.status_code == 200
    # One each: request_started, the chain, CSRF's process_view (Django adapts it apart from the
    # chain), the view, and the response's close (request_finished). Without the synchronous
    # chain every middleware's process_request and process_response is a crossing of its own (15).
    assert len(crossings) <= 5, crossings
