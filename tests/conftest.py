"""Shared fixtures. ``stack`` is one real Playground for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.stack import Stack


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the test suite runs real sandboxes and must run as root (as 'make test' does)")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # A disk quota below the memory limit, so that filling it ends in ENOSPC, not the OOM killer.
    running = Stack.create(PLAYGROUND_SANDBOX_DISK="96M")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def clean_host(stack: Stack) -> Iterator[None]:
    """Asserts that a test leaves nothing of its sandboxes on the host."""
    yield
    left = stack.wait_for_clean_host()
    assert not any(left.values()), f"left on the host: {left}"
