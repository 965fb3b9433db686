"""Fixtures shared by the unit tests: each closes what it opened, also when the test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.ptykit import raw_pty


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A raw PTY pair (master, slave), see :func:`tests.ptykit.raw_pty`; both closed after the test."""
    master, slave = raw_pty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)
