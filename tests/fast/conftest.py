"""Fixtures of the fast tests: the web tier in-process against a fake agent, without root.

Every test here gets: the agent's socket in its own temp dir (nothing listens on it unless the
test starts a fake agent from :mod:`tests.fakeagent`), an in-memory channel layer, Celery tasks
run eagerly in the caller, Redis pointed at a socket that does not exist (so the start-rate
limiter lets every start through, as it does when Redis is down), the agent's image list asked
afresh, passwords hashed with MD5; the test database is SQLite in a temp dir (tests/conftest.py).
No Redis, runc or Daphne.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_django import Settings

from playground.celery import app as celery_app
from playground.sandboxes import api, queues, ratelimit, tasks
from sandbox.wire import client as client_module
from tests.fakeagent import FakeAgent


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short temp dir for unix sockets (a socket's path must stay under 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="pg-fast-") as directory:
        yield Path(directory)


@pytest.fixture(autouse=True)
def web_tier(settings: Settings, socket_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The web tier's settings for one fast test (see the module's docstring)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Instructors' passwords and learners' PINs hashed in a blink: PBKDF2's 0.2 s each is what a
    # stolen database must cost, not what a test is about (Django's advice for tests).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PLAYGROUND = replace(
        settings.PLAYGROUND,
        agent_socket=socket_dir / "agent.sock",
        redis_url=f"unix://{socket_dir / 'no-redis.sock'}",
        limit_exempt=["127.0.0.0/8", "::1/128"],
        proxy_count=0,
    )
    monkeypatch.setattr(api, "_images_cache", (0.0, [], "", {}))
    ratelimit._script.cache_clear()  # its Redis connection is made from the settings above
    queues._redis.cache_clear()
    eager: dict[str, Any] = {"task_always_eager": True, "task_eager_propagates": False}
    eager["broker_url"] = f"redis+socket://{socket_dir / 'no-redis.sock'}"  # for the workers' control messages
    before = {name: celery_app.conf[name] for name in eager}
    celery_app.conf.update(eager)
    yield
    celery_app.conf.update(before)
    ratelimit._script.cache_clear()
    queues._redis.cache_clear()


@pytest.fixture
def agent(settings: Settings) -> Iterator[FakeAgent]:
    """A working fake agent on the web tier's agent socket."""
    with FakeAgent.running(settings.PLAYGROUND.agent_socket) as running:
        yield running


@pytest.fixture
def quick_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web tier gives up on an agent that does not answer within a second, not a minute."""
    monkeypatch.setattr(client_module, "REPLY_TIMEOUT", 0.3)
    monkeypatch.setattr(tasks, "AGENT_RESTART_WAIT", 0.6)
