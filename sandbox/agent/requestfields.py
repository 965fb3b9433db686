"""The fields of an agent request, checked: the sandbox it names, a hostname, a group, a flag, a terminal number.

Each reader returns the field's value, or raises :class:`AgentError` ``bad_request`` naming the
field, the value and what is accepted. Imports only :mod:`sandbox.wire`.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.wire import protocol
from sandbox.wire.envparse import NAME_PATTERN
from sandbox.wire.protocol import AgentError

Request = dict[str, Any]  # a request as decoded from JSON
Reply = dict[str, Any]  # the fields of a reply besides "ok", to be encoded as JSON

SANDBOX_ID = re.compile(r"^[a-z0-9]{8,64}$")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_IDS = 1000  # sandbox ids in one request
GROUP = re.compile(r"^[0-9a-f]{1,64}$")


def require(request: Request, key: str, pattern: re.Pattern[str], accepted: str) -> str:
    """The string under ``key`` if it matches ``pattern`` (``accepted`` describes it for the error)."""
    value = request.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):  # no trailing newline
        raise AgentError("bad_request", f"{key}={value!r} is invalid; use {accepted}")
    return value


def sandbox_id(request: Request, key: str = "id") -> str:
    """The sandbox id under ``key``."""
    return require(request, key, SANDBOX_ID, "8-64 lower-case letters or digits")


def sandbox_ids(request: Request, key: str = "ids") -> list[str]:
    """The list of sandbox ids under ``key`` (at most MAX_IDS)."""
    ids = request.get(key)
    if not isinstance(ids, list) or len(ids) > MAX_IDS:
        raise AgentError("bad_request", f"{key} must be a list of at most {MAX_IDS} sandbox ids")
    return [sandbox_id({"id": i}) for i in ids]


def hostname(request: Request) -> str:
    """The request's ``hostname``: a DNS label."""
    return require(request, "hostname", HOSTNAME, "a DNS label of at most 63 characters")


def group(request: Request) -> str | None:
    """The request's optional ``group`` (a session's id in hex): None when absent."""
    if request.get("group") is None:
        return None
    return require(request, "group", GROUP, "1-64 lower-case hexadecimal digits (a session's id)")


def flag(request: Request, key: str) -> bool:
    """The request's optional boolean ``key``: False when absent."""
    value = request.get(key, False)
    if not isinstance(value, bool):
        raise AgentError("bad_request", f"{key}={value!r} is invalid; use true or false")
    return value


def terminal_number(request: Request) -> int:
    """The request's ``terminal`` (default 0): a terminal number."""
    number = request.get("terminal", 0)
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= protocol.MAX_TERMINAL:
        raise AgentError("bad_request", f"terminal={number!r} is invalid; use a terminal number (0 is the first)")
    return number


HOLDER = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_RESERVED = 1000  # pooled sandboxes one reservation may ask for, all images together
MAX_RESERVATION_TTL = 3600  # seconds


def warm_sizes(request: Request, key: str = "sizes") -> dict[str, int]:
    """The ``{image: count}`` under ``key``: image names, counts 0 or more, MAX_RESERVED at most in all."""
    sizes = request.get(key)
    if not isinstance(sizes, dict):
        raise AgentError("bad_request", f'{key} must be an object of image names and counts, such as {{"busybox": 3}}')
    for image, count in sizes.items():
        if not NAME_PATTERN.fullmatch(image):
            raise AgentError(
                "bad_request",
                f"{key}: {image!r} is not an image name; use 1-63 lower-case letters, digits, '.', '_' or '-'",
            )
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise AgentError("bad_request", f"{key}: the count of {image} is {count!r}; use a whole number, 0 or more")
    total = sum(sizes.values())
    if total > MAX_RESERVED:
        raise AgentError(
            "bad_request", f"{key} asks for {total} pooled sandboxes in all; at most {MAX_RESERVED} may be reserved"
        )
    return dict(sizes)


def seconds(request: Request, key: str, most: int) -> int:
    """The request's ``key``: a whole number of seconds from 0 to ``most``."""
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
        raise AgentError("bad_request", f"{key}={value!r} is invalid; use a whole number of seconds from 0 to {most}")
    return value


def holder(request: Request) -> str:
    """The request's ``holder``: who reserves pooled sandboxes (e.g. ``workshops``)."""
    return require(request, "holder", HOLDER, "1-32 lower-case letters, digits, '_' or '-', a letter first")
