"""Waiting in tests for something to become true: one helper, in a sync and an async form.

``eventually(condition, what)`` calls ``condition`` until it returns a truthy value and returns
that value; with ``until``, until ``until(value)`` is true (so a failure shows the whole value, say
a listing, not just False). After ``timeout`` seconds it raises AssertionError saying what was awaited, how long,
and the last value the condition returned, so a failure reads as the test's own assertion.
Exceptions from ``condition`` are not caught: a condition that may fail while the awaited thing
is not ready yet (a refused connection, a missing file) catches that itself and returns a falsy value.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.05
SHOWN = 2000  # characters of the last value the error message shows


def eventually(
    condition: Callable[[], T],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    explain: Callable[[], object] | None = None,
    until: Callable[[T], object] = bool,
) -> T:
    """Call ``condition`` every ``interval`` seconds until ``until(value)`` is true; return the value.

    ``what`` names the awaited state ("the pool holds 2 sandboxes"). After ``timeout`` seconds
    (the condition is always tried at least once, and once more at the deadline) raises
    AssertionError with ``what``, the timeout, the last value and, if given, ``explain()``
    (say, a log tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, timeout, value, explain))
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# Two signatures, so that the type of the result is the awaited one for an ``async def`` condition.
@overload
async def eventually_async(
    condition: Callable[[], Awaitable[T]],
    what: str,
    timeout: float = ...,
    interval: float = ...,
    explain: Callable[[], object] | None = ...,
    until: Callable[[T], object] = ...,
) -> T: ...


@overload
async def eventually_async(
    condition: Callable[[], T],
    what: str,
    timeout: float = ...,
    interval: float = ...,
    explain: Callable[[], object] | None = ...,
    until: Callable[[T], object] = ...,
) -> T: ...


async def eventually_async(
    condition: Callable[[], Any],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    explain: Callable[[], object] | None = None,
    until: Callable[[Any], object] = bool,
) -> Any:
    """The async form of :func:`eventually`: ``condition`` may be a plain function or return an
    awaitable (an ``async def`` function); the event loop runs while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, timeout, value, explain))
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _failure(what: str, timeout: float, last: object, explain: Callable[[], object] | None) -> str:
    shown = repr(last)
    if len(shown) > SHOWN:
        shown = shown[:SHOWN] + f"... ({len(shown)} characters)"
    message = f"not true within {timeout:g} s: {what}; last value seen: {shown}"
    if explain is not None:
        message += f"\n{explain()}"
    return message
