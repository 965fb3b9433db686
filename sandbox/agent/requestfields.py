"""The fields of an agent request, checked: the sandbox it names, a hostname, a group, a flag, a terminal number.

Each reader returns the field's value, or raises :class:`AgentError` ``bad_request`` naming the
field, the value and what is accepted. Imports only :mod:`sandbox.wire`.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.wire import protocol
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
