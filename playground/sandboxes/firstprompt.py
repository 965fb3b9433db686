"""A new session's first prompt: the first output any viewer of it was sent, which
``playground_session_first_prompt_seconds`` times from the session's creation (docs/metrics.md).

Recorded once per session, in ``Session.first_prompt_at``, by a conditional update that only one
viewer wins, so a reload, a second viewer or a reconnect after Daphne's restart is not counted
again. A viewer whose session was loaded with it set asks nothing; the others write once, after
sending that output, on a task of their own: the prompt never waits for the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from playground.metrics.instruments import FIRST_PROMPT
from playground.sandboxes.models import Session

log = logging.getLogger("playground.terminal")
_recording: set[asyncio.Task[None]] = set()  # kept until done: a viewer leaving does not cancel them


@database_sync_to_async
def _claim(session_pk: uuid.UUID, at: datetime) -> bool:
    """Set the session's first prompt to ``at`` unless it has one; True for the one caller that did."""
    return Session.objects.filter(pk=session_pk, first_prompt_at__isnull=True).update(first_prompt_at=at) == 1


@dataclass(frozen=True)
class FirstPrompt:
    """The first prompt a viewer may be the first to show, of the session created at ``created_at``."""

    session_pk: uuid.UUID
    created_at: datetime

    @classmethod
    def of(cls, session: Session) -> FirstPrompt | None:
        """None when ``session`` (as the viewer loaded it) already had its first prompt."""
        return None if session.first_prompt_at is not None else cls(session.pk, session.created_at)

    def shown(self) -> None:
        """The viewer was just sent output: record it, in the background, if it is the session's first."""
        task = asyncio.get_running_loop().create_task(self._record(timezone.now()))
        _recording.add(task)
        task.add_done_callback(_recording.discard)

    async def _record(self, at: datetime) -> None:
        try:
            if await _claim(self.session_pk, at):
                FIRST_PROMPT.observe(max(0.0, (at - self.created_at).total_seconds()))
        except DatabaseError as exc:  # a metric is never worth a viewer's error
            log.warning("cannot record the first prompt of session %s: %s", self.session_pk, exc)
