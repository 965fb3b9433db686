"""Typed events on the channel layer, from tasks and views to terminal consumers.

Events are a courtesy, never a precondition: with Redis unreachable (restarting) they are
dropped with a warning, and viewers learn the same facts from the database within a
keep-alive interval (see the consumer), so no request fails and no task stops half-way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

log = logging.getLogger("playground.events")

# The sentence a visitor reads for each end reason: the page shows it as the server sends it (the
# ``exit`` event's and the session API's message) and keeps no copy of its own.
END_MESSAGES = {
    "deleted": "You ended this session.",
    "expired": "This session's time ran out.",
    "idle": "This session ended because it was idle too long.",
    "failed": "The sandbox could not be started.",
    "out_of_resources": "The sandbox host ran out of resources; try again in a few minutes.",
    "host_lost": "The sandbox host was lost.",
    "shutdown": "The server was stopped.",
}


class SessionEnded(TypedDict):
    type: Literal["session.ended"]
    reason: str
    message: str


class SessionExtended(TypedDict):
    type: Literal["session.extended"]
    expires_at: str  # ISO 8601; viewers compute the time left themselves


class InstanceRemoved(TypedDict):
    type: Literal["instance.removed"]
    name: str
    message: str


class InstanceStatus(TypedDict):
    type: Literal["instance.status"]
    state: str
    message: str


class Takeover(TypedDict):
    """Someone other than the session's holder (an instructor) types in its terminals (``on``) or
    stopped; ``by`` is their display name. Viewers send it on as the ``takeover`` event."""

    type: Literal["session.takeover"]
    on: bool
    by: str


class TakeoverAsked(TypedDict):
    """A viewer that just connected asks whether a takeover is on; one that is answers ``reply_to``."""

    type: Literal["takeover.asked"]
    reply_to: str  # the asking viewer's channel


class Broadcast(TypedDict):
    type: Literal["session.broadcast"]
    message: str  # the sender's own words, shown as written (never translated)
    sender: str
    sent_at: str  # ISO 8601


class LabStep(TypedDict):
    type: Literal["session.lab_step"]
    step: int


class SandboxReset(TypedDict):
    type: Literal["session.reset"]
    nodes: list[str]


class Hand(TypedDict):
    type: Literal["session.hand"]
    hand: dict[str, str] | None  # {"raised_at", "sentence"}: raised; None: lowered or resolved


def session_group(session_id: uuid.UUID) -> str:
    return f"session.{session_id.hex}"


def instance_group(instance_id: uuid.UUID) -> str:
    return f"instance.{instance_id.hex}"


def end_message(reason: str) -> str:
    """The sentence that tells a visitor why their session ended (a generic one for an unknown reason)."""
    return END_MESSAGES.get(reason, "This session has ended.")


def session_ended(session_id: uuid.UUID, reason: str) -> None:
    """Tell every viewer of the session that it ended, and why (from synchronous code)."""
    event: SessionEnded = {"type": "session.ended", "reason": reason, "message": end_message(reason)}
    _send(session_group(session_id), event)


def session_extended(session_id: uuid.UUID, expires_at: datetime) -> None:
    """Tell every viewer of the session its new expiry (from synchronous code)."""
    event: SessionExtended = {"type": "session.extended", "expires_at": expires_at.isoformat()}
    _send(session_group(session_id), event)


def broadcast(session_id: uuid.UUID, message: str, sender: str, sent_at: datetime) -> None:
    """Show every viewer of the session a message from ``sender`` (their page's banner), from synchronous code."""
    event: Broadcast = {
        "type": "session.broadcast",
        "message": message,
        "sender": sender,
        "sent_at": sent_at.isoformat(),
    }
    _send(session_group(session_id), event)


def lab_step(session_id: uuid.UUID, step: int) -> None:
    """Move the lab panel of every viewer of the session to ``step`` (from synchronous code)."""
    event: LabStep = {"type": "session.lab_step", "step": step}
    _send(session_group(session_id), event)


def sandbox_reset(session_id: uuid.UUID, nodes: list[str]) -> None:
    """Tell every viewer of the session that its nodes ``nodes`` are being replaced by fresh sandboxes
    of the same names (send it before the old sandboxes are destroyed), from synchronous code."""
    event: SandboxReset = {"type": "session.reset", "nodes": nodes}
    _send(session_group(session_id), event)


def hand(session_id: uuid.UUID, raised: dict[str, str] | None) -> None:
    """Tell every viewer of the session that its learner's hand is ``raised`` (``{"raised_at",
    "sentence"}``) or down (None: lowered, or resolved by the instructor), from synchronous code."""
    event: Hand = {"type": "session.hand", "hand": raised}
    _send(session_group(session_id), event)


def instance_status(instance_id: uuid.UUID, state: str, message: str = "") -> None:
    """Tell the viewers of an instance that its state changed (from synchronous code)."""
    event: InstanceStatus = {"type": "instance.status", "state": state, "message": message}
    _send(instance_group(instance_id), event)


def removed_message(name: str) -> str:
    """The sentence that tells a node's viewers it was removed (the session goes on)."""
    return f"{name} was removed; the session's other nodes go on."


def instance_removed(instance_id: uuid.UUID, name: str) -> None:
    """Tell the viewers of a node that its visitor removed it (from synchronous code)."""
    event: InstanceRemoved = {"type": "instance.removed", "name": name, "message": removed_message(name)}
    _send(instance_group(instance_id), event)


SEND_TIMEOUT = 5.0  # seconds a send through the process's own loop may take (Redis hung)


class OwnLoop:
    """An event loop of this process's own, run by a daemon thread, for the group sends of
    synchronous code outside any event loop (a Celery worker's tasks). There ``async_to_sync``
    makes a new loop for each call, and the channel layer keeps its Redis connections per loop: each
    event opened a connection and closed it again (16 to 27 ms each while a class started). Made
    again in a forked child, whose copy of the thread does not run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the loop and wait for it; its exception, or TimeoutError (``work`` is
        then cancelled) after SEND_TIMEOUT seconds."""
        future = asyncio.run_coroutine_threadsafe(work, self._running())
        try:
            future.result(SEND_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="channel-layer-sends", daemon=True).start()
            return self._loop


_own_loop: OwnLoop | None = None


def send_through_own_loop() -> None:
    """From now on, this process's synchronous code sends its events through an :class:`OwnLoop`
    (each Celery pool process, at its start). Code called from an event loop's threads (Daphne's
    views) keeps ``async_to_sync``, which hands the send to that loop and its connections."""
    global _own_loop
    _own_loop = OwnLoop()


def group_send(group: str, message: Any) -> None:
    """Send ``message`` to the channel layer's ``group`` from synchronous code; raises what the
    layer raised (RedisError, OSError, TimeoutError)."""
    layer = get_channel_layer()
    if _own_loop is not None:
        _own_loop.run(layer.group_send(group, message))
    else:
        async_to_sync(layer.group_send)(group, message)


def _send(group: str, event: Any) -> None:
    try:
        group_send(group, event)
    except (RedisError, OSError) as exc:
        log.warning(
            "could not send %s to %s (the channel layer's Redis: %s); viewers will read it from the database",
            event["type"],
            group,
            exc,
        )
