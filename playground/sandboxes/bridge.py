"""The terminal bridge of one viewer: its browser's frames to a sandbox terminal on the agent, and back.

It attaches to the terminal once the sandbox runs (the agent waits for it while it starts),
keeps what the browser types before then and writes it first, writes input in arrival order,
and pumps output to the browser no faster than the browser takes it (:mod:`backpressure`).
Under Daphne, input and output frames may take :mod:`shortcut`'s path past Channels.

A tab (a terminal after the first, see :mod:`terminalsapi`) that ends alone (its shell exited,
or it was closed) gets ``exit`` with its ``terminal`` number and close code 1000; a tab that no
longer exists is refused with 4404.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.db import DatabaseError

from playground.metrics.instruments import TERMINAL_BYTES, TERMINALS_OPEN
from playground.sandboxes import agentclient, firstprompt, tasks
from playground.sandboxes.backpressure import SendWindow, open_window
from playground.sandboxes.models import Instance
from playground.sandboxes.shortcut import Shortcut
from playground.sandboxes.wsprotocol import (
    CLOSE_NORMAL,
    CLOSE_UNAVAILABLE,
    CLOSE_UNKNOWN,
    OUTPUT,
    Viewer,
    parse_size,
)
from sandbox.wire.client import AgentClient, TerminalStream
from sandbox.wire.protocol import AgentError, Kind

log = logging.getLogger("playground.terminal")
BYTES_IN, BYTES_OUT = TERMINAL_BYTES.labels("in"), TERMINAL_BYTES.labels("out")

MAX_PENDING_INPUT = 64 * 1024
INPUT_CHUNK = 64 * 1024
PROVISION_WAIT = 120
RETRY_DELAY = 0.2  # seconds before asking again for a sandbox whose creation is still being retried
# How a tab (a terminal after the first) can end without the session ending, and what its viewers read.
TAB_ENDS = {
    "shell_exited": "The shell of this tab exited; close the tab, or open a new one.",
    "closed": "This tab was closed.",
}


class TerminalBridge:
    """Frames between ``viewer``'s browser and one terminal of a sandbox.

    Made before the connection is accepted, so that :class:`Shortcut` sees every frame;
    :meth:`attach_when_running` names the sandbox.
    """

    def __init__(self, viewer: Viewer, send: Callable[..., Any], terminal: int) -> None:
        self.viewer = viewer
        self.send = send  # the ASGI send of the connection (Daphne's, for the window)
        self.terminal = terminal  # 0: the first shell; n: a tab
        self.sandbox_id = ""
        self.agent: AgentClient | None = None  # of the sandbox's host, set with sandbox_id
        self.stream: TerminalStream | None = None
        self.window: SendWindow | None = None
        self.pending = bytearray()  # input typed before attaching
        self.pending_size: tuple[int, int] | None = None  # the browser's size, sent before attaching
        self.attach_lock = asyncio.Lock()
        self.input_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []
        self.accepts_input = True  # False: input frames are the consumer's to refuse (a read-only watcher)
        self.counted = False  # counted in playground_terminals_open (attached, not yet closed)
        self.prompt: firstprompt.FirstPrompt | None = None  # the session's first prompt, if it may be this
        self.shortcut = Shortcut.install(send, self)

    @property
    def attached(self) -> bool:
        return self.stream is not None

    def frame_handled(self) -> None:
        """The consumer finished handling one frame from Channels' queue (see :class:`Shortcut`)."""
        if self.shortcut is not None:
            self.shortcut.handled()

    # -- attaching --------------------------------------------------------------------------
    async def attach_when_running(self, instance: Instance) -> None:
        """Attach now, or as soon as the agent has created the sandbox (it waits for us).

        ``instance`` is as the viewer loaded it a moment ago: its state says whether to tell the
        browser it is still starting, or that it failed (a later failure comes as an event)."""
        self.sandbox_id = instance.sandbox_id
        self.prompt = firstprompt.FirstPrompt.of(instance.session)
        try:
            self.agent = agentclient.of_instance(instance)  # its session's host is loaded with it
        except AgentError as exc:
            log.warning("cannot attach to %s: %s", self.sandbox_id, exc.message)
            await self.viewer.refuse(CLOSE_UNAVAILABLE, exc.code, "The sandbox is not reachable right now.")
            return
        if instance.state in (Instance.State.FAILED, Instance.State.DESTROYED):
            await self.viewer.send_event("status", state="failed", message="The sandbox could not be started.")
            return
        starting = instance.state != Instance.State.RUNNING
        if starting:
            await self.viewer.send_event("status", state="provisioning", message="Starting your sandbox…")
        if instance.state == Instance.State.REQUESTED and self.terminal == 0:
            self.tasks.append(asyncio.create_task(self.create_early(instance)))
        await self.attach(wait=PROVISION_WAIT, starting=instance.pk if starting else None)

    async def create_early(self, instance: Instance) -> None:
        """Ask the agent to create the sandbox now, with the request the worker's provisioning task
        will send (``tasks.create_fields``), and record it running as the task would
        (``tasks.adopt_created``), so that the first prompt waits for the agent alone and not for the
        worker's queue: a class joining at once queues fifty tasks, and the last learner's waited
        seconds for the others'. The task then finds the instance claimed. If the task claimed it
        first, its create gets this one's sandbox (``create`` is idempotent, and a create of a
        sandbox still being made answers once it is). A refusal or a failure is left to the task,
        which tries again and reports it. The database work runs in a thread of its own, not in the
        viewer's database thread, which a class's joins keep busy."""
        assert self.agent is not None
        in_a_thread = functools.partial(DatabaseSyncToAsync, thread_sensitive=False)
        try:
            fields = await in_a_thread(tasks.create_fields)(instance)
            sandbox = tasks.created_sandbox(await self.agent.request("create", **fields))
        except (AgentError, DatabaseError) as exc:
            log.info("early create of %s left to the worker: %s", instance.sandbox_id, exc)
            return
        try:
            await in_a_thread(tasks.adopt_created)(str(instance.pk), sandbox)
        except DatabaseError as exc:  # the reaper gives a claimed instance back to the task
            log.warning("recording %s running failed: %s", instance.sandbox_id, exc)

    async def attach(self, wait: float, starting: uuid.UUID | None = None) -> None:
        """Attach to the sandbox's terminal, the agent waiting up to ``wait`` seconds for the sandbox
        to exist. ``starting``: the primary key of the viewer's instance when it was not running yet;
        while the database still says it is starting, an agent that answers ``unknown_sandbox`` is
        asked again (a create refused by a full host is tried again by the worker, and the agent
        wakes its waiters at each refusal). Once the database says it runs, it is asked once more: it
        was made between the agent's answer and the look at the database (by the worker, after a
        viewer's early create was refused)."""
        async with self.attach_lock:
            if self.stream is not None or self.agent is None:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            asked_running = False
            while True:
                left = max(0.0, deadline - loop.time())
                try:
                    self.stream = await self.agent.attach(self.sandbox_id, wait=left, terminal=self.terminal, pty=True)
                    break
                except AgentError as exc:
                    if exc.code == "unknown_terminal":  # a closed tab: nothing to reconnect to
                        await self.viewer.refuse(CLOSE_UNKNOWN, "unknown_terminal", "This tab's terminal was closed.")
                        return
                    retry = exc.code == "unknown_sandbox" and starting is not None and left > RETRY_DELAY
                    state = await state_of(starting) if retry and starting is not None else None
                    if state in (Instance.State.REQUESTED, Instance.State.PROVISIONING):
                        await asyncio.sleep(RETRY_DELAY)
                        continue
                    if state == Instance.State.RUNNING and not asked_running:
                        asked_running = True
                        continue
                    log.warning("cannot attach to %s: %s", self.sandbox_id, exc.message)
                    await self.viewer.refuse(CLOSE_UNAVAILABLE, exc.code, "The sandbox is not reachable right now.")
                    return
            TERMINALS_OPEN.inc()
            self.counted = True
            await self.flush_pending()  # before any other await, so later input cannot overtake it
            if self.pending_size is not None and self.stream is not None:
                await self.stream.resize(*self.pending_size)
            await self.viewer.send_event("status", state="running", message="")
            if self.window is None:
                self.window = open_window(self.send)
            if self.stream is not None:
                self.stream.on_output(self.take_output_now)
                self.tasks.append(asyncio.create_task(self.pump_output(self.stream)))

    # -- output -------------------------------------------------------------------------------
    def take_output_now(self, payload: bytes) -> bool:
        """Output from the stream as it arrives (see :mod:`sandbox.wire.stream`): sent to the browser at
        once when the window is open and the shortcut can send it; otherwise ``pump_output`` does."""
        if self.viewer.closed or self.window is None or not self.window.is_open():
            return False
        if not self.send_output_now(payload):
            return False
        self.shown(payload)
        return True

    def send_output_now(self, payload: bytes) -> bool:
        """Output straight to Daphne's protocol; False without a shortcut or an open connection."""
        return self.shortcut is not None and self.shortcut.send_output(OUTPUT + payload)

    async def pump_output(self, stream: TerminalStream) -> None:
        """Forward the agent's output, never faster than the browser takes it (``backpressure``):
        while the browser does not read, this stops reading the agent, which stops reading the PTY."""
        while (frame := await stream.read()) is not None:
            kind, payload = frame
            if kind == Kind.DATA and not self.viewer.closed:
                if self.window is not None:
                    await self.window.wait()
                if not self.send_output_now(payload):
                    await self.viewer.send(bytes_data=OUTPUT + payload)
                self.shown(payload)
                continue
            reason = json.loads(payload).get("reason") if kind == Kind.EVENT else None
            if self.terminal and reason in TAB_ENDS:
                await self.viewer.send_event("exit", reason=reason, terminal=self.terminal, message=TAB_ENDS[reason])
                await self.viewer.close(code=CLOSE_NORMAL)  # the tab is over: the page does not reconnect
                return
            if reason == "shell_exited":
                await self.viewer.send_event(
                    "exit",
                    reason="shell_exited",
                    message="The shell exited. End this session and start a new one to continue.",
                )
            if reason == "destroyed":
                # The sandbox is gone: its terminal is over, though the agent leaves the stream open
                # after this event. Its end is the stream's:
                # stream_ended tells the viewer why from the database (session ended, node removed
                # or replaced, else 4503 to reconnect), also when the event that says so was missed
                # (a viewer that joins its groups just after the session's node was removed).
                await stream.close()
                break
        if self.stream is stream:
            self.stream = None
            self.uncount()
            await self.viewer.stream_ended()

    def shown(self, payload: bytes) -> None:
        """Output was sent to the browser: counted, and the first of a new session's is its prompt."""
        BYTES_OUT.inc(len(payload))
        if self.prompt is not None:
            prompt, self.prompt = self.prompt, None
            prompt.shown()

    def uncount(self) -> None:
        if self.counted:
            self.counted = False
            TERMINALS_OPEN.dec()

    # -- input --------------------------------------------------------------------------------
    async def receive(self, kind: Kind, payload: bytes) -> None:
        """A checked frame from the browser; raises :class:`BadFrame` for a malformed resize."""
        if kind == Kind.DATA:
            await self.send_input(payload)
        elif kind == Kind.RESIZE:
            await self.resize(*parse_size(payload))
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
            or not self.accepts_input
            or not self.viewer.live()
            or self.pending
            or self.input_lock.locked()
            or len(data) > INPUT_CHUNK
        ):
            return False
        if not stream.send_now(Kind.DATA, data):
            return False
        BYTES_IN.inc(len(data))
        return True

    async def send_input(self, data: bytes) -> None:
        """Input from the browser: kept while the sandbox starts, then written in arrival order."""
        if self.stream is None:
            if len(self.pending) + len(data) > MAX_PENDING_INPUT:
                await self.viewer.send_event(
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
            chunk = data[start : start + INPUT_CHUNK]
            await self.stream.send(Kind.DATA, chunk)
            BYTES_IN.inc(len(chunk))

    async def resize(self, cols: int, rows: int) -> None:
        if self.stream is not None:
            await self.stream.resize(cols, rows)  # the agent clamps it to sane bounds
        else:
            self.pending_size = (cols, rows)  # applied once attached (a new tab's PTY has no size yet)

    async def close(self) -> None:
        """Stop pumping and detach from the agent (the terminal lives on)."""
        for task in self.tasks:
            task.cancel()
        self.uncount()
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await stream.close()


@database_sync_to_async
def state_of(instance_pk: uuid.UUID) -> str | None:
    """The instance's state now (None if it is gone)."""
    return Instance.objects.filter(pk=instance_pk).values_list("state", flat=True).first()
