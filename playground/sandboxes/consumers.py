"""The terminal websocket: one browser tab viewing one terminal of an instance.

``ws/sessions/<session>/<instance>/`` is the instance's first terminal (0); ``.../<n>/`` is a tab
(see :mod:`~playground.sandboxes.terminalsapi`). The protocol is in
:mod:`~playground.sandboxes.wsprotocol`; the consumer only puts the parts together: it refuses
early (:mod:`~playground.sandboxes.access`), joins the session's and the instance's event groups,
starts the session clock (:mod:`~playground.sandboxes.clock`) and the terminal bridge
(:mod:`~playground.sandboxes.bridge`), dispatches frames and events, and cleans up on disconnect.

Permission is checked at connect and again on every frame (the session's expiry), on every
session event from the channel layer, and every activity interval (the database). A malformed
frame gets an ``error`` event and is otherwise ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from playground import i18n, wording
from playground.sandboxes import access, events, wsprotocol
from playground.sandboxes.bridge import TerminalBridge
from playground.sandboxes.clock import SessionClock
from playground.sandboxes.models import Instance, Session
from playground.sandboxes.wsprotocol import CLOSE_ENDED, CLOSE_NORMAL, CLOSE_UNAVAILABLE, BadFrame

log = logging.getLogger("playground.terminal")


@database_sync_to_async
def load(session_hex: str, name: str) -> Instance | None:
    """The instance ``name`` of session ``session_hex`` with its session, in one query; None if either is unknown."""
    session_id = access.parse_session_id(session_hex)
    if session_id is None:
        return None
    return Instance.objects.select_related("session__host").filter(session_id=session_id, name=name).first()


CONNECTION_LOST = "The terminal lost its connection to the server; it reconnects by itself."
REMOVED_STATES = (Instance.State.REMOVING, Instance.State.DESTROYED)  # of a node, once its visitor removed it


@database_sync_to_async
def removed(instance_pk: Any) -> bool:
    """True when the node was removed (its session may go on)."""
    return Instance.objects.filter(pk=instance_pk, state__in=REMOVED_STATES).exists()


@database_sync_to_async
def replaced(instance: Instance) -> bool:
    """True when the node was removed to be replaced: a node of its session it keeps has its name now
    (a reset, see the ``reset`` event), so its viewer should reconnect rather than end."""
    kept = Instance.objects.filter(session_id=instance.session_id, name=instance.name, state__in=Instance.KEPT_STATES)
    return kept.exclude(pk=instance.pk).exists()


async def closing_when_events_lost(
    run: Awaitable[None], refuse: Callable[[int, str, str], Awaitable[None]], who: str, message: str
) -> None:
    """Await ``run`` (a consumer's connection); if the channel layer fails (Redis restarting) or
    another I/O error ends it, log it and ``refuse`` the viewer with ``events_unavailable`` and 4503,
    so the page reconnects once Redis is back, instead of Channels' crash (1011). ``who`` names the
    viewer in the log ("a terminal viewer"); ``message`` is the sentence the viewer is shown."""
    try:
        await run
    except (RedisError, OSError) as exc:
        log.warning("%s lost its connection (%s: %s); closed to reconnect", who, type(exc).__name__, exc)
        await refuse(CLOSE_UNAVAILABLE, "events_unavailable", message)


class TerminalConsumer(AsyncWebsocketConsumer):
    """One browser tab viewing one instance's terminal (a :class:`~wsprotocol.Viewer`)."""

    closed = False
    released = False
    language = i18n.DEFAULT_LANGUAGE  # the viewer's, set at connect
    instance: Instance | None = None
    clock: SessionClock | None = None
    bridge: TerminalBridge | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: list[asyncio.Task[None]] = []
        self.groups_joined: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the connection; whatever ends it, release what the viewer holds (:meth:`release`).

        The channel layer's receive fails when Redis goes away (a restart): the viewer is told
        (``error`` ``events_unavailable``) and closed with 4503, so its page reconnects once Redis
        is back, instead of Channels' crash (1011). Without the release, the viewer's activity
        record would go on after such an end and its session would never become idle. Any other
        I/O error that ends the connection is treated alike.
        """
        try:
            await closing_when_events_lost(
                super().__call__(scope, receive, send), self.refuse, "a terminal viewer", CONNECTION_LOST
            )
        finally:
            await self.release()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Every message goes straight to its handler.

        Channels' own ``dispatch`` first runs Django's ``close_old_connections`` in the one
        thread that database calls share, for every message: a thread hop on every keystroke and
        before connecting, queued behind every viewer's database work. This consumer touches the
        database only through ``database_sync_to_async``, which closes old connections around
        each call itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        try:
            await handler(message)
        finally:
            if message["type"] == "websocket.receive" and self.bridge is not None:
                self.bridge.frame_handled()

    async def connect(self) -> None:
        self.language = access.viewer_language(self.scope)
        kwargs = self.scope["url_route"]["kwargs"]
        terminal = int(kwargs.get("terminal", 0))  # 0: the first shell; n: a tab (ws/.../<instance>/<n>/)
        self.bridge = TerminalBridge(self, self.base_send, terminal)  # before accept
        await self.accept()
        instance = await load(kwargs["session"], kwargs["instance"])
        session = instance.session if instance is not None else None
        refusal = await self.refusal(session, instance, terminal)
        if refusal is not None:
            await self.refuse(*refusal)
            return
        assert session is not None and instance is not None
        self.clock = SessionClock(self, session)
        if (reason := self.clock.ended_as_loaded()) is not None:
            await self.end(reason)
            return
        if instance.state in REMOVED_STATES:
            await self.node_removed(instance.name)
            return
        self.instance = instance
        await self.clock.send_expiry()
        # The terminal first: attaching needs neither the event groups nor the activity record, so
        # the first prompt waits on neither Redis nor a database write. An end of the session
        # before the groups are joined is still seen: keep_alive's first touch finds it.
        self.tasks.append(asyncio.create_task(self.bridge.attach_when_running(instance)))
        if not await self.join_groups(session, instance):
            await self.refuse(CLOSE_UNAVAILABLE, "events_unavailable", "The terminal cannot connect right now.")
            return
        for job in (self.clock.watch_deadline(), self.clock.keep_alive()):
            self.tasks.append(asyncio.create_task(job))
        await self.ask_takeover(session)

    async def refusal(
        self, session: Session | None, instance: Instance | None, terminal: int
    ) -> tuple[int, str, str] | None:
        """Why this viewer may not connect (``access.terminal_refusal``: the session's key); None if it may.
        A subclass with other viewers (an instructor watching) overrides it."""
        return access.terminal_refusal(self.scope, session, instance, terminal, settings.ALLOWED_HOSTS)

    async def ask_takeover(self, session: Session) -> None:
        """Ask the session's viewers whether someone has taken its terminals over: one that has
        answers this viewer alone with ``session.takeover`` (so a viewer connecting during a
        takeover shows it too). Nothing is stored: the answer is as live as the one typing."""
        asked: events.TakeoverAsked = {"type": "takeover.asked", "reply_to": self.channel_name}
        try:
            await self.channel_layer.group_send(events.session_group(session.id), asked)
        except (RedisError, OSError) as exc:  # a courtesy: the next takeover event still comes
            log.info("cannot ask about a takeover: %s", exc)

    async def join_groups(self, session: Session, instance: Instance) -> bool:
        """Join the session's and the instance's event groups; False when Redis cannot be reached."""
        try:
            for group in (events.session_group(session.id), events.instance_group(instance.id)):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        except (RedisError, OSError) as exc:  # Redis restarting: the page tries again shortly
            log.warning("cannot join the session's event groups: %s", exc)
            return False
        return True

    # -- what the clock and the bridge call back (wsprotocol.Viewer) -------------------------
    async def send_event(self, type_: str, **fields: Any) -> None:
        """Send an event, its ``message`` in the viewer's language (:mod:`playground.wording`)."""
        if not self.closed:
            await self.send(text_data=wsprotocol.event(type_, **wording.event(self.language, type_, fields)))

    async def refuse(self, code: int, error: str, message: str) -> None:
        await self.send_event("error", code=error, message=message)
        await self.close(code=code)

    async def end(self, reason: str) -> None:
        await self.send_event("exit", reason=reason, message=events.end_message(reason))
        await self.close(code=CLOSE_ENDED)

    async def node_removed(self, name: str) -> None:
        """The node was removed, not the session: ``exit`` (reason ``node_removed``), then close 1000
        (the page does not reconnect; the session's other nodes go on)."""
        await self.send_event("exit", reason="node_removed", node=name, message=events.removed_message(name))
        await self.close(code=CLOSE_NORMAL)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close once; later frames and events for this connection are dropped."""
        if self.closed:
            return
        self.closed = True
        await super().close(code=code, reason=reason)

    def live(self) -> bool:
        return not self.closed and self.clock is not None and not self.clock.past_deadline()

    async def stream_ended(self) -> None:
        """The agent's stream ended: because the session did (4410), the node was removed (1000), or
        the agent went away (4503). Nothing when the viewer was closed meanwhile (an event said why)."""
        if self.closed:
            return
        assert self.clock is not None and self.instance is not None
        reason = await self.clock.end_reason()
        if reason is not None:
            await self.end(reason)
        elif await removed(self.instance.pk):
            if await replaced(self.instance):
                await self.close(code=CLOSE_UNAVAILABLE)  # the page reconnects, to the new sandbox
            else:
                await self.node_removed(self.instance.name)
        else:
            await self.close(code=CLOSE_UNAVAILABLE)

    # -- frames from the browser ------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.clock is None or self.bridge is None or self.closed:
            return
        if self.clock.past_deadline() and await self.clock.expired():
            return
        try:
            await self.bridge.receive(*wsprotocol.decode(bytes_data))
        except BadFrame as exc:
            await self.send_event("error", code=exc.code, message=exc.message)

    # -- channel layer events -----------------------------------------------------------------
    async def session_ended(self, event: events.SessionEnded) -> None:
        await self.end(event["reason"])

    async def session_extended(self, event: events.SessionExtended) -> None:
        if self.clock is not None and not self.closed:
            await self.clock.extended(datetime.fromisoformat(event["expires_at"]))

    async def session_takeover(self, event: events.Takeover) -> None:
        """Someone else (an instructor) started or stopped typing in this session's terminals."""
        await self.send_event("takeover", on=event["on"], by=event["by"])

    async def takeover_asked(self, event: events.TakeoverAsked) -> None:
        """Another viewer asks who is taking over: a viewer of the session's own does not."""

    async def session_broadcast(self, event: events.Broadcast) -> None:
        """A message for the session's page (its banner), as its sender wrote it."""
        fields = {"message": event["message"], "from": event["sender"], "sent_at": event["sent_at"]}
        await self.send_event("broadcast", **fields)

    async def session_hand(self, event: events.Hand) -> None:
        """The learner's hand went up or down (another tab of theirs, or the instructor resolved it)."""
        await self.send_event("hand", hand=event["hand"])

    async def session_lab_step(self, event: events.LabStep) -> None:
        await self.send_event("lab_step", step=event["step"])

    async def session_reset(self, event: events.SandboxReset) -> None:
        """The session's nodes are replaced by fresh sandboxes of the same names: ``reset``, then a
        viewer of one of them is closed with 4503, so its page reconnects to the new sandbox."""
        await self.send_event("reset", nodes=event["nodes"])
        if self.instance is not None and self.instance.name in event["nodes"]:
            await self.close(code=CLOSE_UNAVAILABLE)

    async def instance_removed(self, event: events.InstanceRemoved) -> None:
        await self.node_removed(event["name"])

    async def instance_status(self, event: events.InstanceStatus) -> None:
        if event["state"] == Instance.State.FAILED and self.bridge is not None and not self.bridge.attached:
            await self.send_event(
                "status", state="failed", message=event["message"] or "The sandbox could not be started."
            )

    async def disconnect(self, code: int) -> None:
        await self.release()

    async def release(self) -> None:
        """Once: stop the clock's tasks and the bridge, record activity (idleness counts from when
        the last viewer left), and leave the event groups."""
        if self.released:
            return
        self.released = True
        for task in self.tasks:
            task.cancel()
        if self.bridge is not None:
            await self.bridge.close()
        if self.groups_joined and self.clock is not None:
            await self.clock.touch()  # idleness counts from when the last viewer left
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except (RedisError, OSError) as exc:  # the membership expires by itself (group_expiry)
                log.info("cannot leave event group %s: %s", group, exc)
