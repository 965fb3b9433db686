"""The instructor's dashboard websocket: ``ws/workshops/<id>/``, pushed to, never polled.

Only the workshop's owner (a signed-in, active staff user) or a superuser may connect; anyone else
gets an ``error`` event (``forbidden``, or ``unknown_workshop``) and the close code 4403 (4404), as
the terminal websocket refuses. Its route alone is wrapped in Channels' ``AuthMiddlewareStack``
(:mod:`playground.workshops.routing`), so the learners' terminals never wait on a sign-in lookup.

Events to the page (JSON text frames; rows as :mod:`playground.workshops.dashboard` describes):

- ``{"type": "snapshot", "rows", "histogram", "help", "settings", "now"}`` at connect, and again
  every :data:`REFRESH` seconds (so ``connected``, ``last_activity`` and a session that ended
  without a learner's action stay current; "time on step" and the "stuck: long on step" flag tick
  in the page from ``step_started_at`` and ``stuck_at``, with no server timer);
- ``{"type": "row", "row", "histogram"}`` when a learner changed (a new learner's row is new);
- ``{"type": "help", "help"}``: the whole help queue, when it changed.

**The contract** for whoever changes a learner (joins, labs, hands, the instructor's actions):
send the channel layer's group ``workshop-<workshop id>`` (:func:`group`) the message
``{"type": "learner.changed", "learner": <learner pk>}``, once the change is committed. The
synchronous :func:`learner_changed` does exactly that (on commit, and a channel layer or Redis
that fails is logged, never raised).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, TypedDict

from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from playground.sandboxes import access, events
from playground.sandboxes.consumers import closing_when_events_lost
from playground.sandboxes.wsprotocol import CLOSE_FORBIDDEN, CLOSE_UNKNOWN
from playground.workshops import dashboard
from playground.workshops.models import Workshop

log = logging.getLogger("playground.workshops")

REFRESH = 30.0  # seconds between snapshots re-sent while connected
NOT_YOURS = "Only the workshop's instructor, signed in, may open its dashboard."
NO_SUCH = "There is no workshop with that number."
CONNECTION_LOST = "The dashboard lost its connection to the server; it reconnects by itself."


class LearnerChanged(TypedDict):
    """The group message of the contract (see the module)."""

    type: str  # "learner.changed"
    learner: int


def group(workshop_id: int) -> str:
    """The channel layer's group of a workshop's dashboards."""
    return f"workshop-{workshop_id}"


def send_learner_changed(workshop_id: int, learner_pk: int) -> None:
    """Tell the workshop's dashboards now that a learner changed; a failing channel layer is logged."""
    message: LearnerChanged = {"type": "learner.changed", "learner": learner_pk}
    try:
        events.group_send(group(workshop_id), message)
    except Exception as exc:  # noqa: BLE001 - a dashboard missing one push must never fail the change
        log.warning(
            "cannot tell workshop %s's dashboards that learner %s changed (%s: %s); they catch up on refresh",
            workshop_id,
            learner_pk,
            type(exc).__name__,
            exc,
        )


def learner_changed(workshop_id: int, learner_pk: int) -> None:
    """Tell the workshop's dashboards that a learner changed, once the current transaction commits
    (at once outside one). Never raises for the channel layer."""
    transaction.on_commit(lambda: send_learner_changed(workshop_id, learner_pk))


def may_see(user: Any, workshop: Workshop) -> bool:
    """True when ``user`` may open ``workshop``'s dashboard: an active staff user who owns it, or an
    active superuser."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return False
    return bool(user.is_superuser or workshop.owner_id == user.pk)


@database_sync_to_async
def load_workshop(workshop_id: int) -> Workshop | None:
    return Workshop.objects.filter(pk=workshop_id).first()


@database_sync_to_async
def snapshot(workshop: Workshop) -> dict[str, Any]:
    return dashboard.snapshot(workshop, timezone.now())


@database_sync_to_async
def changed(workshop: Workshop, learner_pks: set[int]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The rows of the learners who changed (those of this workshop) and the help queue, now: their
    rows alone are loaded (the histogram is counted from the rows the consumer holds), so a batch of
    changes costs the same few queries however many learners it holds or the class has."""
    return dashboard.load_rows_of(workshop, learner_pks, timezone.now()), dashboard.load_help(workshop)


class DashboardConsumer(AsyncWebsocketConsumer):
    """One instructor's dashboard page of one workshop (see the module)."""

    workshop: Workshop | None = None
    closed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refresher: asyncio.Task[None] | None = None
        self.pusher: asyncio.Task[None] | None = None  # pushing the rows of learners who changed
        self.dirty: set[int] = set()  # learners changed since the pusher's last load
        self.help_sent: list[Any] | None = None
        self.rows: dict[int, dict[str, Any]] = {}  # by learner, as last sent: the histogram's counts
        self.steps: int | None = None  # the lab's steps (None: free sandboxes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the connection; a channel layer that fails (Redis restarting) closes it with 4503 so the
        page reconnects, instead of Channels' crash.

        The dashboard's database calls run on a thread of its own (a ``ThreadSensitiveContext``, as
        Django gives each HTTP request), not on the one the process's terminal viewers share, so a
        class's rows never wait behind fifty terminals' activity records."""
        async with ThreadSensitiveContext():
            try:
                await closing_when_events_lost(
                    super().__call__(scope, receive, send), self.refuse, "a dashboard", CONNECTION_LOST
                )
            finally:
                tasks = [task for task in (self.refresher, self.pusher) if task is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)  # ended before their thread is

    async def connect(self) -> None:
        await self.accept()
        workshop = await load_workshop(int(self.scope["url_route"]["kwargs"]["workshop_id"]))
        user = self.scope.get("user")
        if workshop is None:
            allowed = user is not None and user.is_authenticated and user.is_staff
            await self.refuse(*((CLOSE_UNKNOWN, "unknown_workshop", NO_SUCH) if allowed else self.forbidden()))
            return
        if not may_see(user, workshop) or not access.websocket_origin_allowed(self.scope, settings.ALLOWED_HOSTS):
            await self.refuse(*self.forbidden())
            return
        self.workshop = workshop
        await self.channel_layer.group_add(group(workshop.pk), self.channel_name)
        await self.send_snapshot()
        self.refresher = asyncio.create_task(self.refresh())

    @staticmethod
    def forbidden() -> tuple[int, str, str]:
        return CLOSE_FORBIDDEN, "forbidden", NOT_YOURS

    async def disconnect(self, code: int) -> None:
        """Leave the workshop's group; the refresher and the pusher stop with the connection (``__call__``)."""
        self.closed = True
        if self.workshop is not None:
            try:
                await self.channel_layer.group_discard(group(self.workshop.pk), self.channel_name)
            except (RedisError, OSError) as exc:
                log.warning("cannot leave workshop %s's group (%s); it expires by itself", self.workshop.pk, exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing; a frame gets an ``error`` event and is otherwise ignored."""
        await self.push({"type": "error", "code": "read_only", "message": "The dashboard takes no frames."})

    async def push(self, event: dict[str, Any]) -> None:
        """Send one event (a JSON object with its ``type``), unless the connection is closing."""
        if not self.closed:
            await self.send(text_data=json.dumps(event))

    async def refuse(self, code: int, error: str, message: str) -> None:
        await self.push({"type": "error", "code": error, "message": message})
        self.closed = True
        await self.close(code=code)

    async def send_snapshot(self) -> None:
        assert self.workshop is not None
        state = await snapshot(self.workshop)
        self.help_sent = state["help"]
        self.rows = {row["learner"]: row for row in state["rows"]}
        self.steps = state["histogram"]["steps"] if state["histogram"] is not None else None
        await self.push(state)

    async def refresh(self) -> None:
        """Re-send the snapshot every REFRESH seconds while connected."""
        while not self.closed:
            await asyncio.sleep(REFRESH)
            try:
                await self.send_snapshot()
            except DatabaseError as exc:
                log.warning("cannot refresh workshop %s's dashboard (%s); trying again later", self.workshop, exc)

    async def learner_changed(self, message: LearnerChanged) -> None:
        """A learner changed (the contract): their row is to be pushed, with the help queue if it
        changed (:meth:`push_changes`). Returns at once, so the next message is taken while rows load."""
        if self.workshop is None or self.closed:
            return
        self.dirty.add(int(message["learner"]))
        if self.pusher is None or self.pusher.done():
            self.pusher = asyncio.create_task(self.push_changes())

    async def push_changes(self) -> None:
        """Until no learner is left changed: load the rows of every learner who changed since the last
        load at once, push each (``row``), then the help queue if it changed. A class changing
        together (50 checks in a second) costs a few loads, not one per change, and no row waits
        behind the others' loads."""
        while self.dirty and not self.closed:
            assert self.workshop is not None
            learners, self.dirty = self.dirty, set()
            try:
                rows, queue = await changed(self.workshop, learners)
            except DatabaseError as exc:
                log.warning(
                    "cannot load workshop %s's changed rows (%s); the next refresh shows them", self.workshop, exc
                )
                return
            for row in rows:
                self.rows[row["learner"]] = row
            histogram = dashboard.histogram(list(self.rows.values()), self.steps)
            for row in rows:
                await self.push({"type": "row", "row": row, "histogram": histogram})
            if queue != self.help_sent:
                self.help_sent = queue
                await self.push({"type": "help", "help": queue})
