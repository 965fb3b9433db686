"""Fixtures of the browser tests: one Chromium per module, a fresh context (cookies, storage) per test,
and a Playground serving the ``docker`` image for the modules that need it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.dockerkit import build_docker_image
from tests.e2e.browsing import VIEWPORT, chromium
from tests.imagekit import CACHE
from tests.stack import Stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def docker_stack() -> Iterator[Stack]:
    """A Playground whose default image is ``docker`` (built first: seconds when var/cache holds its
    tree), with one pooled sandbox as ``make run`` keeps them: its engine up before the visitor comes."""
    stack = Stack.create(PLAYGROUND_DEFAULT_IMAGE="docker", PLAYGROUND_WARM_POOL="1", PLAYGROUND_IMAGE_CACHE=str(CACHE))
    build_docker_image(stack)
    try:
        stack.start()
        yield stack
    finally:
        stack.end_started_sessions()
        stack.stop()
