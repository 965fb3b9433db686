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
    # A disk quota below the memory limit, so that filling it ends in ENOSPC, not the OOM killer;
    # set for the image, over the site-wide defaults, to exercise per-image quotas everywhere.
    running = Stack.create(PLAYGROUND_IMAGE_QUOTAS="busybox:disk=96M,pids=200")
    running.start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def end_sessions_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test must not leave its sessions to the next one."""
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").end_started_sessions()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failure, attach the end of the stack's log (launcher, agent, Daphne, Celery) to the report."""
    report = yield
    if report.failed and "stack" in getattr(item, "fixturenames", []):
        stack = item.funcargs.get("stack")
        if isinstance(stack, Stack):
            report.sections.append(("stack log (last 40 lines)", stack.log_tail(40)))
    return report

