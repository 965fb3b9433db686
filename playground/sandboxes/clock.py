"""The session clock of one terminal viewer: its session's deadline, as the browser is told it.

While connected, a viewer sends the ``expiry`` event (again after each extension), warns its
browser before the end (each stage of :mod:`~playground.sandboxes.timings` once per deadline),
records the session's ``last_activity`` every activity interval (so a watched session is never
idle), and ends the connection when the session ends: at its deadline unless the database has
a later one (an extension whose event was lost still counts), or when the database says it ended.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from playground.sandboxes import timings
from playground.sandboxes.models import Session
from playground.sandboxes.wsprotocol import Viewer

log = logging.getLogger("playground.terminal")


@database_sync_to_async
def _touch(session_pk: Any) -> bool | None:
    """Record activity; False when the session is no longer active, None when the database failed (logged)."""
    try:
        return Session.touch(session_pk)
    except DatabaseError as exc:  # e.g. a locked SQLite: the next interval tries again
        log.warning("cannot record activity of session %s: %s", session_pk, exc)
        return None


@database_sync_to_async
def _current_expiry(session_pk: Any) -> datetime | None:
    """The session's expiry as the database has it, or None when it is no longer active."""
    return (
        Session.objects.filter(pk=session_pk, state=Session.State.ACTIVE).values_list("expires_at", flat=True).first()
    )


@database_sync_to_async
def _end_reason(session_pk: Any) -> str | None:
    """Why the session ended, or None while it is active."""
    row = Session.objects.filter(pk=session_pk).values_list("state", "ended_reason").first()
    if row is None:
        return "deleted"
    state, reason = row
    return None if state == Session.State.ACTIVE else (reason or "deleted")


class SessionClock:
    """The deadline of ``session`` for one ``viewer``; ``session.expires_at`` is kept current."""

    def __init__(self, viewer: Viewer, session: Session) -> None:
        self.viewer = viewer
        self.session = session
        self.deadline_changed = asyncio.Event()

    def ended_as_loaded(self) -> str | None:
        """Why the session had ended when it was loaded (its deadline passed counts), or None."""
        if self.session.state != Session.State.ACTIVE:
            return self.session.ended_reason or "deleted"
        if self.past_deadline():
            return "expired"  # the reaper has not come by yet
        return None

    def past_deadline(self) -> bool:
        return self.session.expires_at <= timezone.now()

    async def send_expiry(self) -> None:
        """The ``expiry`` event: when the session ends, and the latest it could end if extended."""
        latest = self.session.max_expires_at(settings.PLAYGROUND.session_max_ttl)
        await self.viewer.send_event(
            "expiry",
            expires_at=self.session.expires_at.isoformat(),
            seconds_left=self.session.seconds_left(),
            max_expires_at=latest.isoformat(),
        )

    async def extended(self, expires_at: datetime) -> None:
        """A new expiry: tell the browser, and restart the warnings from it."""
        self.session.expires_at = expires_at
        await self.send_expiry()
        self.deadline_changed.set()

    async def watch_deadline(self) -> None:
        """Send each ``warning`` stage when due, and end the connection at expiry.

        Sleeps until the next stage or the end, and starts over when an extension moves the
        deadline (``deadline_changed``); at the deadline it asks the database (:meth:`expired`).
        """
        sent: set[str] = set()
        sent_for = self.session.expires_at
        while not self.viewer.closed:
            expires_at = self.session.expires_at
            if expires_at != sent_for:  # extended: its warnings are due again
                sent, sent_for = set(), expires_at
            lifetime = (expires_at - self.session.created_at).total_seconds()
            left = (expires_at - timezone.now()).total_seconds()
            if left <= 0:
                if await self.expired():
                    return
                continue
            due = timings.due_stages(left, lifetime)
            if due and not set(due) <= sent:
                await self.send_warning(due[-1], left)
            sent.update(due)
            self.deadline_changed.clear()
            try:
                await asyncio.wait_for(self.deadline_changed.wait(), timings.next_wake(left, lifetime, sent))
            except TimeoutError:
                pass

    async def send_warning(self, stage: str, seconds_left: float) -> None:
        extendable = self.session.expires_at < self.session.max_expires_at(settings.PLAYGROUND.session_max_ttl)
        await self.viewer.send_event(
            "warning",
            reason="expiring",
            stage=stage,
            seconds_left=max(0, round(seconds_left)),
            expires_at=self.session.expires_at.isoformat(),
            extendable=extendable,
            message=timings.warning_message(seconds_left, extendable),
        )

    async def expired(self) -> bool:
        """At the deadline: end the connection (True) unless the session was extended meanwhile."""
        expires_at = await _current_expiry(self.session.pk)
        if expires_at is not None and expires_at > timezone.now():
            self.session.expires_at = expires_at
            return False
        reason = await _end_reason(self.session.pk)
        await self.viewer.end(reason or "expired")  # the reaper ends it in the database within one interval
        return True

    async def keep_alive(self) -> None:
        """Record activity now (at connect) and every interval while connected; end the connection
        if the session ended. Started once the viewer has joined the session's event groups, so an
        end published before then is found by the first touch, and one after it is announced."""
        interval = timings.activity_interval(settings.PLAYGROUND.idle_timeout)
        while not self.viewer.closed:
            if await _touch(self.session.pk) is False:
                await self.viewer.end(await _end_reason(self.session.pk) or "deleted")
                return
            await asyncio.sleep(interval)

    async def touch(self) -> None:
        """Record activity now (when the viewer leaves: idleness counts from then)."""
        await _touch(self.session.pk)

    async def end_reason(self) -> str | None:
        """Why the session ended, as the database has it now; None while it is active."""
        return await _end_reason(self.session.pk)
