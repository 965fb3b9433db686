"""Parts that other apps add to a session's JSON, without the sessions API importing them.

The workshops app (which the sessions may not import: see .importlinter) registers ``workshop``:
a learner's session says which workshop it belongs to. A part is a function of the session and
the reader's language that returns the part's JSON, or None to leave it out for that session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playground.sandboxes.models import Session

SessionPart = Callable[[Session, str], "dict[str, Any] | None"]

_parts: dict[str, SessionPart] = {}


def register(name: str, part: SessionPart) -> None:
    """Add ``part`` to every session's JSON under ``name`` (again: replaced)."""
    _parts[name] = part


def add_parts(body: dict[str, Any], session: Session, language: str) -> None:
    """Put each registered part that has something for ``session`` into ``body``."""
    for name, part in _parts.items():
        value = part(session, language)
        if value is not None:
            body[name] = value
