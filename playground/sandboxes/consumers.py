"""The terminal websocket: bridges a browser's xterm.js to a sandbox terminal on the agent.

Protocol (DESIGN.md): binary frames whose first byte is an opcode. From the browser:
0x00 input, 0x01 resize (JSON ``{"cols", "rows"}``), 0x02 pause, 0x03 resume. To the
browser: 0x00 output. Text frames carry JSON events (status, expiry, warning, error, exit).
Close codes: 4403 forbidden, 4404 unknown, 4410 session ended. A malformed frame gets an
``error`` event and is otherwise ignored. Permission is checked at connect and again on every
frame (the session's expiry), on every session event from the channel layer, and every
activity interval (the database).

While connected, each viewer records the session's ``last_activity`` (so a watched session is
never idle), warns its browser before the session's end (following extensions), and closes
with the reason when the session ends.

``ws/sessions/<session>/<instance>/`` is the instance's first terminal (0); ``.../<n>/`` is a tab
(see :mod:`playground.sandboxes.terminals`). A tab that ends alone (its shell exited, or it was
closed) gets ``exit`` with its ``terminal`` number and close code 1000; a tab that no longer
exists is refused with 4404.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.http.cookie import parse_cookie
from django.utils import timezone
from redis.exceptions import RedisError

from playground.sandboxes import access, events, lifecycle
from playground.sandboxes.agent import client
from playground.sandboxes.flow import SendWindow, open_window
from playground.sandboxes.models import Instance, Session
from playground.sandboxes.shortcut import Shortcut
from sandbox.wire.client import TerminalStream
from sandbox.wire.protocol import MAX_TERMINAL, AgentError, Kind

log = logging.getLogger("playground.terminal")

CLOSE_FORBIDDEN, CLOSE_UNKNOWN, CLOSE_ENDED = 4403, 4404, 4410
# The sandbox host is unreachable (the agent restarts): the client reconnects. Not 1011, which a
# server may not send through Daphne (autobahn accepts only 1000 and 3000-4999 from a server).
CLOSE_UNAVAILABLE = 4503
MAX_PENDING_INPUT = 64 * 1024
INPUT_CHUNK = 64 * 1024
PROVISION_WAIT = 120
CLOSE_NORMAL = 1000
# How a tab (a terminal after the first) can end without the session ending, and what its viewers read.
TAB_ENDS = {
    "shell_exited": "The shell of this tab exited; close the tab, or open a new one.",
    "closed": "This tab was closed.",
}
OPCODES = {0: Kind.DATA, 1: Kind.RESIZE, 2: Kind.PAUSE, 3: Kind.RESUME}


@database_sync_to_async
def load(session_hex: str, name: str) -> tuple[Session | None, Instance | None]:
    session_id = access.parse_session_id(session_hex)
    session = Session.objects.filter(pk=session_id).first() if session_id else None
    instance = session.instances.filter(name=name).first() if session else None
    return session, instance


@database_sync_to_async
def instance_state(instance_pk: Any) -> str | None:
    return Instance.objects.filter(pk=instance_pk).values_list("state", flat=True).first()


@database_sync_to_async
def touch(session_pk: Any) -> bool | None:
    """Record activity; False when the session is no longer active, None when the database failed (logged)."""
    try:
        return Session.touch(session_pk)
    except DatabaseError as exc:  # e.g. a locked SQLite: the next interval tries again
        log.warning("cannot record activity of session %s: %s", session_pk, exc)
        return None


@database_sync_to_async
def current_expiry(session_pk: Any) -> datetime | None:
    """The session's expiry as the database has it, or None when it is no longer active."""
    return (
        Session.objects.filter(pk=session_pk, state=Session.State.ACTIVE).values_list("expires_at", flat=True).first()
    )


@database_sync_to_async
def end_reason(session_pk: Any) -> str | None:
    """Why the session ended, or None while it is active."""
    row = Session.objects.filter(pk=session_pk).values_list("state", "ended_reason").first()
    if row is None:
        return "deleted"
    state, reason = row
    return None if state == Session.State.ACTIVE else (reason or "deleted")


class TerminalConsumer(AsyncWebsocketConsumer):
    """One browser tab viewing one instance's terminal."""

    session: Session | None = None
    instance: Instance | None = None
    stream: TerminalStream | None = None
    window: SendWindow | None = None
    shortcut: Shortcut | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Frames from the browser go straight to ``receive``.

        Channels' own ``dispatch`` first runs Django's ``close_old_connections`` in the one
        thread that database calls share, for every message: a thread hop on every keystroke,
        queued behind every viewer's database work. ``receive`` touches the database only
        through ``database_sync_to_async``, which closes old connections around each call itself.
        """
        if message["type"] == "websocket.receive":
            try:
                await self.websocket_receive(message)
            finally:
                if self.shortcut is not None:
                    self.shortcut.handled()
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        self.closed = False
        self.pending = bytearray()
        self.pending_size: tuple[int, int] | None = None  # the browser's size, sent before attaching
        self.tasks: list[asyncio.Task[None]] = []
        self.groups_joined: list[str] = []
        self.attach_lock = asyncio.Lock()
        self.input_lock = asyncio.Lock()
        self.deadline_changed = asyncio.Event()
        self.shortcut = Shortcut.install(self.base_send, self)  # before accept: no frame is queued yet
        await self.accept()
        kwargs = self.scope["url_route"]["kwargs"]
        self.terminal = int(kwargs.get("terminal", 0))  # 0: the first shell; n: a tab (ws/.../<instance>/<n>/)
        self.session, self.instance = await load(kwargs["session"], kwargs["instance"])
        if self.session is None or self.instance is None or self.terminal > MAX_TERMINAL:
            await self.refuse(CLOSE_UNKNOWN, "unknown_session", "There is no such session or instance.")
            return
        if not self._origin_allowed() or not self.session.key_matches(self._presented_key()):
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "This terminal belongs to another session's key.")
            return
        if self.session.state != Session.State.ACTIVE:
            await self.end(self.session.ended_reason or "deleted")
            return
        if self.session.expires_at <= timezone.now():
            await self.end("expired")  # the reaper has not come by yet
            return
        try:
            for group in (events.session_group(self.session.id), events.instance_group(self.instance.id)):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        except (RedisError, OSError) as exc:  # Redis restarting: the page tries again shortly
            log.warning("cannot join the session's event groups: %s", exc)
            await self.refuse(CLOSE_UNAVAILABLE, "events_unavailable", "The terminal cannot connect right now.")
            return
        await touch(self.session.pk)
        await self.send_expiry()
        for job in (self.attach_when_running(), self.watch_deadline(), self.keep_alive()):
            self.tasks.append(asyncio.create_task(job))

    async def refuse(self, code: int, error: str, message: str) -> None:
        await self.send_event("error", code=error, message=message)
        await self.close(code=code)

    async def end(self, reason: str) -> None:
        await self.send_event("exit", reason=reason, message=events.end_message(reason))
        await self.close(code=CLOSE_ENDED)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close once; later frames and events for this connection are dropped."""
        if self.closed:
            return
        self.closed = True
        await super().close(code=code, reason=reason)

    # -- the session's end ------------------------------------------------------------------
    async def send_expiry(self) -> None:
        """The ``expiry`` event: when the session ends, and the latest it could end if extended."""
        assert self.session is not None
        latest = self.session.max_expires_at(settings.PLAYGROUND.session_max_ttl)
        await self.send_event(
            "expiry",
            expires_at=self.session.expires_at.isoformat(),
            seconds_left=self.session.seconds_left(),
            max_expires_at=latest.isoformat(),
        )

    async def watch_deadline(self) -> None:
        """Send each ``warning`` stage when due, and end the connection at expiry.

        Sleeps until the next stage or the end, and starts over when an extension moves the
        deadline (``deadline_changed``); at the deadline it asks the database, so an extension
        whose event was lost still counts.
        """
        assert self.session is not None
        sent: set[str] = set()
        sent_for = self.session.expires_at
        while not self.closed:
            expires_at = self.session.expires_at
            if expires_at != sent_for:  # extended: its warnings are due again
                sent, sent_for = set(), expires_at
            lifetime = (expires_at - self.session.created_at).total_seconds()
            left = (expires_at - timezone.now()).total_seconds()
            if left <= 0:
                if await self.expired_in_database():
                    return
                continue
            due = lifecycle.due_stages(left, lifetime)
            if due and not set(due) <= sent:
                await self.send_warning(due[-1], left)
            sent.update(due)
            self.deadline_changed.clear()
            try:
                await asyncio.wait_for(self.deadline_changed.wait(), lifecycle.next_wake(left, lifetime, sent))
            except TimeoutError:
                pass

    async def send_warning(self, stage: str, seconds_left: float) -> None:
        assert self.session is not None
        extendable = self.session.expires_at < self.session.max_expires_at(settings.PLAYGROUND.session_max_ttl)
        await self.send_event(
            "warning",
            reason="expiring",
            stage=stage,
            seconds_left=max(0, round(seconds_left)),
            expires_at=self.session.expires_at.isoformat(),
            extendable=extendable,
            message=lifecycle.warning_message(seconds_left, extendable),
        )

    async def expired_in_database(self) -> bool:
        """At the deadline: end the connection (True) unless the session was extended meanwhile."""
        assert self.session is not None
        expires_at = await current_expiry(self.session.pk)
        if expires_at is not None and expires_at > timezone.now():
            self.session.expires_at = expires_at
            return False
        reason = await end_reason(self.session.pk)
        await self.end(reason or "expired")  # the reaper ends it in the database within one interval
        return True

    async def keep_alive(self) -> None:
        """Record activity every interval while connected; end the connection if the session ended."""
        assert self.session is not None
        interval = lifecycle.activity_interval(settings.PLAYGROUND.idle_timeout)
        while not self.closed:
            await asyncio.sleep(interval)
            if await touch(self.session.pk) is False:
                await self.end(await end_reason(self.session.pk) or "deleted")
                return

    # -- attaching --------------------------------------------------------------------------
    async def attach_when_running(self) -> None:
        """Attach now, or as soon as the agent has created the sandbox (it waits for us)."""
        assert self.instance is not None
        state = await instance_state(self.instance.pk)
        if state in (Instance.State.FAILED, Instance.State.DESTROYED, None):
            await self.send_event("status", state="failed", message="The sandbox could not be started.")
            return
        if state != Instance.State.RUNNING:
            await self.send_event("status", state="provisioning", message="Starting your sandbox…")
        await self.attach(wait=PROVISION_WAIT)

    async def attach(self, wait: float) -> None:
        assert self.instance is not None
        async with self.attach_lock:
            if self.stream is not None:
                return
            try:
                self.stream = await client().attach(
                    self.instance.sandbox_id, wait=wait, terminal=self.terminal, pty=True
                )
            except AgentError as exc:
                if exc.code == "unknown_terminal":  # a closed tab: nothing to reconnect to
                    await self.refuse(CLOSE_UNKNOWN, "unknown_terminal", "This tab's terminal was closed.")
                    return
                log.warning("cannot attach to %s: %s", self.instance.sandbox_id, exc.message)
                await self.send_event("error", code=exc.code, message="The sandbox is not reachable right now.")
                await self.close(code=CLOSE_UNAVAILABLE)
                return
            await self.flush_pending()  # before any other await, so later input cannot overtake it
            if self.pending_size is not None and self.stream is not None:
                await self.stream.resize(*self.pending_size)
            await self.send_event("status", state="running", message="")
            if self.window is None:
                self.window = open_window(self.base_send)
            if self.stream is not None:
                self.stream.on_output(self.take_output_now)
                self.tasks.append(asyncio.create_task(self.pump_output(self.stream)))

    def take_output_now(self, payload: bytes) -> bool:
        """Output from the stream as it arrives (see :mod:`sandbox.wire.stream`): sent to the browser at
        once when the window is open and the shortcut can send it; otherwise ``pump_output`` does."""
        if self.closed or self.window is None or not self.window.is_open():
            return False
        return self.send_output_now(payload)

    def send_output_now(self, payload: bytes) -> bool:
        """Output straight to Daphne's protocol; False without a shortcut or an open connection."""
        return self.shortcut is not None and self.shortcut.send_output(b"\x00" + payload)

    async def pump_output(self, stream: TerminalStream) -> None:
        """Forward the agent's output, never faster than the browser takes it (``flow``): while
        the browser does not read, this stops reading the agent, which stops reading the PTY."""
        while (frame := await stream.read()) is not None:
            kind, payload = frame
            if kind == Kind.DATA and not self.closed:
                if self.window is not None:
                    await self.window.wait()
                if not self.send_output_now(payload):
                    await self.send(bytes_data=b"\x00" + payload)
                continue
            reason = json.loads(payload).get("reason") if kind == Kind.EVENT else None
            if self.terminal and reason in TAB_ENDS:
                await self.send_event("exit", reason=reason, terminal=self.terminal, message=TAB_ENDS[reason])
                await self.close(code=CLOSE_NORMAL)  # the tab is over: the page does not reconnect
                return
            if reason == "shell_exited":
                await self.send_event(
                    "exit",
                    reason="shell_exited",
                    message="The shell exited. End this session and start a new one to continue.",
                )
        if self.stream is stream:
            self.stream = None
            assert self.session is not None
            reason = await end_reason(self.session.pk)
            if reason is not None:
                await self.end(reason)  # the stream ended because the session did
            else:
                await self.close(code=CLOSE_UNAVAILABLE)

    # -- frames from the browser ------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.closed:
            return
        if self.session.expires_at <= timezone.now() and await self.expired_in_database():
            return
        if bytes_data is None:
            await self.send_event(
                "error", code="text_frame", message="Send terminal frames as binary: one opcode byte, then the payload."
            )
            return
        if not bytes_data or bytes_data[0] not in OPCODES:
            await self.send_event(
                "error",
                code="bad_opcode",
                message="Unknown frame; the first byte must be 0 (input), 1 (resize), 2 (pause) or 3 (resume).",
            )
            return
        kind, payload = OPCODES[bytes_data[0]], bytes_data[1:]
        if kind == Kind.DATA:
            await self.send_input(payload)
        elif kind == Kind.RESIZE:
            await self.resize(payload)
        elif self.stream is not None:
            await self.stream.send(kind)

    async def flush_pending(self) -> None:
        """Send input typed before the sandbox was ready, in order."""
        async with self.input_lock:
            while self.pending and self.stream is not None:
                data, self.pending = bytes(self.pending), bytearray()
                await self._write_input(data)

    def take_input_now(self, data: bytes) -> bool:
        """Input from :class:`Shortcut`: written to the agent at once when nothing is ahead of it
        and nothing needs waiting for (see ``send_input`` for the general path)."""
        stream = self.stream
        if (
            stream is None
            or self.closed
            or self.session is None
            or self.pending
            or self.input_lock.locked()
            or len(data) > INPUT_CHUNK
            or self.session.expires_at <= timezone.now()
        ):
            return False
        return stream.send_now(Kind.DATA, data)

    async def send_input(self, data: bytes) -> None:
        """Input from the browser: kept while the sandbox starts, then written in arrival order."""
        if self.stream is None:
            if len(self.pending) + len(data) > MAX_PENDING_INPUT:
                await self.send_event(
                    "error",
                    code="input_overflow",
                    message="The sandbox is still starting; some typed input was dropped.",
                )
                return
            self.pending += data
            return
        async with self.input_lock:  # the lock's FIFO order is the keystrokes' order
            await self._write_input(data)

    async def _write_input(self, data: bytes) -> None:
        for start in range(0, len(data), INPUT_CHUNK):
            if self.stream is None:
                return
            await self.stream.send(Kind.DATA, data[start : start + INPUT_CHUNK])

    async def resize(self, payload: bytes) -> None:
        try:
            size = json.loads(payload)
            cols, rows = int(size["cols"]), int(size["rows"])
        except (ValueError, TypeError, KeyError, OverflowError):
            await self.send_event(
                "error", code="bad_resize", message='A resize frame needs JSON like {"cols": 80, "rows": 24}.'
            )
            return
        if self.stream is not None:
            await self.stream.resize(cols, rows)  # the agent clamps it to sane bounds
        else:
            self.pending_size = (cols, rows)  # applied once attached (a new tab's PTY has no size yet)

    # -- channel layer events -----------------------------------------------------------------
    async def session_ended(self, event: events.SessionEnded) -> None:
        await self.end(event["reason"])

    async def session_extended(self, event: events.SessionExtended) -> None:
        """A new expiry: tell the browser, and restart the warnings from it."""
        if self.session is None or self.closed:
            return
        self.session.expires_at = datetime.fromisoformat(event["expires_at"])
        await self.send_expiry()
        self.deadline_changed.set()

    async def instance_status(self, event: events.InstanceStatus) -> None:
        if event["state"] == Instance.State.FAILED and self.stream is None:
            await self.send_event(
                "status", state="failed", message=event["message"] or "The sandbox could not be started."
            )

    # -- helpers ------------------------------------------------------------------------------
    async def send_event(self, type_: str, **fields: Any) -> None:
        if not self.closed:
            await self.send(text_data=json.dumps({"type": type_, **fields}))

    def _presented_key(self) -> str | None:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        if query.get("key"):
            return query["key"][0]
        headers = dict(self.scope.get("headers", []))
        cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
        assert self.session is not None
        return cookies.get(self.session.cookie_name)

    def _origin_allowed(self) -> bool:
        """Browsers send Origin; it must be one of our hosts. Scripts may send none."""
        origin = dict(self.scope.get("headers", [])).get(b"origin")
        if origin is None:
            return True
        host = (urlsplit(origin.decode("latin-1")).hostname or "").lower()
        return host in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        if self.groups_joined and self.session is not None:
            await touch(self.session.pk)  # idleness counts from when the last viewer left
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except (RedisError, OSError) as exc:  # the membership expires by itself (group_expiry)
                log.info("cannot leave event group %s: %s", group, exc)
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await stream.close()
