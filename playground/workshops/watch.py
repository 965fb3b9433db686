"""An instructor watching a learner's terminal, read-only, and taking it over: the page
``/workshops/<id>/learners/<learner>/watch/`` (:func:`watch_page`) and its websocket.

``ws/watch/<session>/<instance>/`` (and ``.../<terminal>/`` for a tab) is the learner's own
terminal websocket (:class:`~playground.sandboxes.consumers.TerminalConsumer`, the same
protocol, screen replay included) for a signed-in instructor: the staff user who owns the
learner's workshop, or a superuser (anyone else: ``error`` ``watch_forbidden``, close 4403). Its route
alone is wrapped in Channels' ``AuthMiddlewareStack`` (playground/asgi.py), so the learners'
terminals never wait on a sign-in lookup.

Read-only until taken over: input frames are dropped (one ``error`` ``read_only`` per read-only
spell), and resize frames always are (the learner's window sets the terminal's size). The
watcher takes over with the text frame ``{"type": "takeover", "on": true}`` and gives back with
``"on": false``; while on, its input reaches the terminal and every viewer of the session gets
the ``takeover`` event ``{"on": true, "by": "<instructor's name>"}`` (their page's banner).
Giving back, or the watcher's connection ending for any reason, sends ``{"on": false}``. A viewer
that connects during a takeover asks the session's group and a watcher typing answers it.

A watcher is a viewer like any other for the session's clock: while watched, a learner's session
is not idle.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from redis.exceptions import RedisError

from playground.sandboxes import access, events, wsprotocol
from playground.sandboxes.consumers import TerminalConsumer
from playground.sandboxes.filesapi import HOME_NODE
from playground.sandboxes.models import Instance, Session
from playground.sandboxes.wsprotocol import CLOSE_FORBIDDEN, CLOSE_UNKNOWN, BadFrame
from playground.workshops.models import Learner
from playground.workshops.views import instructor_required, message_page, visible_workshops
from sandbox.wire.protocol import MAX_TERMINAL, Kind

log = logging.getLogger("playground.workshops")

NOT_YOURS = "Only the instructor of this learner's workshop, signed in, may watch this terminal."
READ_ONLY = "read-only: take over to type"
BAD_CONTROL = 'A control frame is JSON like {"type": "takeover", "on": true}.'


def display_name(user: Any) -> str:
    """How learners see an instructor: their full name, else their user name."""
    return str(user.get_full_name() or user.get_username())


def may_watch(user: Any, learner: Learner | None) -> bool:
    """True when ``user`` may watch ``learner``'s terminals: an active staff user who owns the
    learner's workshop, or an active superuser."""
    if learner is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return False
    return bool(user.is_superuser or learner.workshop.owner_id == user.pk)


@database_sync_to_async
def watcher(scope: dict[str, Any], session_id: Any) -> str | None:
    """The display name of the scope's user if they may watch the learner of ``session_id``, else None."""
    user = scope.get("user")
    learner = Learner.objects.select_related("workshop").filter(session_id=session_id).first()
    if user is None or not may_watch(user, learner):
        return None
    return display_name(user)


class WatchConsumer(TerminalConsumer):
    """An instructor's view of a learner's terminal: read-only until taken over (see the module)."""

    name = ""  # the instructor's display name, once allowed
    typing = False  # taken over: input goes through
    told_read_only = False  # the read-only error was sent in this read-only spell

    async def refusal(
        self, session: Session | None, instance: Instance | None, terminal: int
    ) -> tuple[int, str, str] | None:
        if session is None or instance is None or terminal > MAX_TERMINAL:
            return CLOSE_UNKNOWN, "unknown_session", "There is no such session or instance."
        name = await watcher(self.scope, session.id)
        if name is None or not access.websocket_origin_allowed(self.scope, settings.ALLOWED_HOSTS):
            return CLOSE_FORBIDDEN, "watch_forbidden", NOT_YOURS
        self.name = name
        if self.bridge is not None:
            self.bridge.accepts_input = False
        return None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Control frames (text) and terminal frames, read-only until taken over."""
        if self.closed or self.instance is None:
            return
        if text_data is not None:
            await self.control(text_data)
            return
        try:
            kind, _ = wsprotocol.decode(bytes_data)
        except BadFrame as exc:
            await self.send_event("error", code=exc.code, message=exc.message)
            return
        if kind == Kind.RESIZE:
            return  # the learner's window sizes the terminal, never a watcher's
        if kind == Kind.DATA and not self.typing:
            if not self.told_read_only:
                self.told_read_only = True
                await self.send_event("error", code="read_only", message=READ_ONLY)
            return
        await super().receive(text_data, bytes_data)

    async def control(self, text_data: str) -> None:
        """``{"type": "takeover", "on": bool}``: take the terminal over, or give it back."""
        try:
            frame = json.loads(text_data)
            on = frame["on"] if frame["type"] == "takeover" else None
        except (ValueError, TypeError, KeyError):
            on = None
        if not isinstance(on, bool):
            await self.send_event("error", code="bad_control", message=BAD_CONTROL)
            return
        await self.take_over(on)

    async def take_over(self, on: bool) -> None:
        """Start or stop typing in the learner's terminal; the session's viewers are told."""
        if on == self.typing:
            await self.send_event("takeover", on=on, by=self.name)
            return
        self.typing = on
        self.told_read_only = False
        if self.bridge is not None:
            self.bridge.accepts_input = on
        await self.tell_session(on)
        await self.send_event("takeover", on=on, by=self.name)
        assert self.instance is not None
        log.info("%s %s %s", self.name, "took over" if on else "gave back", self.instance)

    async def tell_session(self, on: bool, channel: str | None = None) -> None:
        """Send ``session.takeover`` to the session's viewers (or to ``channel`` alone)."""
        if self.instance is None:
            return
        event: events.Takeover = {"type": "session.takeover", "on": on, "by": self.name}
        try:
            if channel is None:
                await self.channel_layer.group_send(events.session_group(self.instance.session_id), event)
            else:
                await self.channel_layer.send(channel, event)
        except (RedisError, OSError) as exc:
            log.warning("cannot tell the learner's viewers of a takeover (%s); they learn it on reconnecting", exc)

    async def session_takeover(self, event: events.Takeover) -> None:
        """A watcher's own page learns of its takeover from :meth:`take_over`, not the group."""

    async def takeover_asked(self, event: events.TakeoverAsked) -> None:
        """A viewer just connected: tell it if this watcher is typing."""
        if self.typing:
            await self.tell_session(True, event["reply_to"])

    async def release(self) -> None:
        """Give the terminal back (the learner's banner goes) before letting go of the rest."""
        if self.typing and not self.released:
            self.typing = False
            await self.tell_session(False)
        await super().release()


@instructor_required
def watch_page(request: HttpRequest, workshop_id: int, learner_pk: int) -> HttpResponse:
    """The watch page of a learner of one of the instructor's workshops (a superuser's: any), else
    404: their terminal through the watch websocket, a tab per node of their session."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    learner = Learner.objects.filter(pk=learner_pk, workshop=workshop).select_related("session").first()
    if workshop is None or learner is None:
        return message_page(request, 404, "workshop.learner_not_found")
    nodes = [node.name for node in learner.session.kept_nodes()] or [HOME_NODE]
    return render(request, "workshops/watch.html", {"workshop": workshop, "learner": learner, "nodes": nodes})


# Only these routes go through Channels' AuthMiddlewareStack (the instructor's sign-in); the
# learners' terminal routes (playground/sandboxes/routing.py) stay without it.
watch_app = AuthMiddlewareStack(WatchConsumer.as_asgi())
websocket_urlpatterns = [
    path("ws/watch/<str:session>/<str:instance>/", watch_app),
    path("ws/watch/<str:session>/<str:instance>/<int:terminal>/", watch_app),
]
