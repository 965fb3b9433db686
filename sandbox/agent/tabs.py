"""A sandbox's terminals after the first (browser tabs): ``open_terminal``, ``terminals``,
``close_terminal``, and the taking over of an adopted sandbox's tabs.

A tab is a shell started with ``runc exec`` on a PTY of its own; its number (>= 1) is never
reused within a sandbox. Its terminal goes to the keeper and into the sandbox's record like the
first, so it survives an agent restart. A tab ends when its shell exits (even if background
jobs still hold the terminal) or when it is closed: its viewers get ``exit`` and are hung up,
and whatever is left of the shell's session is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from dataclasses import dataclass, field

from sandbox.agent import requestfields
from sandbox.agent.keeping import KeptTerminals
from sandbox.agent.recordings import Recordings
from sandbox.agent.records import Sandbox, Tab, TabRecord, tab_key, write_record
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Reply, Request
from sandbox.pty.terminal import Terminal
from sandbox.runtime.runc import RuncRuntime, SandboxError, process_stat
from sandbox.wire.protocol import AgentError
from sandbox.wire.replay import ReplayBuffer

log = logging.getLogger("sandbox.agent")

SHELL_EXIT_GRACE = 0.05  # seconds for a tab's last output to be read after its shell exited


@dataclass(eq=False)
class Tabs:
    """Opens, watches and closes the tabs of the sandboxes in ``registry``."""

    registry: Registry
    runtime: RuncRuntime
    kept: KeptTerminals
    max_terminals: int
    replay_bytes: int
    recordings: Recordings
    # tabs being closed after their shell exited:
    _background: set[asyncio.Task[bool]] = field(default_factory=set, init=False)

    async def open(self, request: Request) -> Reply:
        """Start another shell in the sandbox, on a terminal of its own: ``{"terminal": n}`` (n >= 1).

        At most PLAYGROUND_MAX_TERMINALS terminals per sandbox, the first included. The new
        terminal is handed to the keeper and recorded like the first, so it survives an agent restart.
        """
        sandbox = self.registry.live(request)
        async with sandbox.lock:
            if self.registry.sandboxes.get(sandbox.sandbox_id) is not sandbox or sandbox.terminal is None:
                raise AgentError("unknown_sandbox", f"no sandbox {sandbox.sandbox_id} on this host")
            if sandbox.terminal.exited:
                raise AgentError(
                    "sandbox_exited",
                    "the sandbox's first shell has exited, which stopped the sandbox; "
                    "end the session and start a new one",
                )
            limit = self.max_terminals
            if 1 + len(sandbox.tabs) >= limit:
                raise AgentError(
                    "too_many_terminals",
                    f"this sandbox already has {limit} terminals, the most it may "
                    "have (PLAYGROUND_MAX_TERMINALS); close one first",
                )
            number = sandbox.next_tab
            sandbox.next_tab += 1
            tab = await self._start(sandbox, number)
            self.recordings.start(sandbox, number, tab.terminal, fresh=True)
            sandbox.tabs[number] = tab
            self.watch_shell(sandbox, tab)
            self.kept.keep(tab_key(sandbox.runtime_id, number), tab.terminal)
            self._record(sandbox)
        log.info("opened terminal %d of sandbox %s (shell pid %d)", number, sandbox.sandbox_id, tab.pid)
        return {"terminal": number}

    async def terminals(self, request: Request) -> Reply:
        """The sandbox's open terminals: ``{"terminals": [0, n, ...]}``."""
        sandbox = self.registry.live(request)
        return {"terminals": [0, *sorted(sandbox.tabs)]}

    async def close(self, request: Request) -> Reply:
        """End terminal ``n`` >= 1: its viewers get ``exit`` (``closed``) and its shell's session is
        killed. ``{"closed": bool}``: False when it was already closed (repeat-safe)."""
        sandbox = self.registry.live(request)
        number = requestfields.terminal_number(request)
        if number == 0:
            raise AgentError("first_terminal", "terminal 0 is the sandbox's first shell; it ends with the sandbox")
        return {"closed": await self._close(sandbox, number, "closed")}

    async def adopt(self, sandbox: Sandbox, tabs: list[TabRecord]) -> None:
        """Take over the recorded tabs of an adopted sandbox; end the shells of those the keeper lost."""
        for entry in tabs:
            number, pid, started = int(entry["n"]), int(entry["pid"]), int(entry["started"])
            on_exit = functools.partial(self.ended, sandbox, number)
            terminal = self.kept.take(tab_key(sandbox.runtime_id, number), on_exit)
            if terminal is None:
                log.info("ending tab %d of sandbox %s: the keeper lost its terminal", number, sandbox.sandbox_id)
                with contextlib.suppress(SandboxError):
                    await self.runtime.kill_session(sandbox.runtime_id, pid, started)
                continue
            tab = sandbox.tabs[number] = Tab(number, terminal, pid, started)
            self.recordings.start(sandbox, number, terminal, fresh=False)
            self.watch_shell(sandbox, tab)

    def drop(self, sandbox: Sandbox, number: int, reason: str) -> Tab | None:
        """Forget tab ``number``: close its PTY (the shell hangs up), its replay buffer, the keeper's
        copy, and its viewers' streams after an ``exit`` event."""
        tab = sandbox.tabs.pop(number, None)
        if tab is None:
            return None
        if tab.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(tab.pidfd)
            os.close(tab.pidfd)
            tab.pidfd = -1
        viewers = list(tab.terminal.viewers)
        tab.terminal.close(reason)
        for viewer in viewers:
            viewer.hang_up()
        self.kept.forget(tab_key(sandbox.runtime_id, number))
        return tab

    def watch_shell(self, sandbox: Sandbox, tab: Tab) -> None:
        """End the tab when its shell exits, as a terminal window closes: also when jobs it left
        in the background still hold the terminal (they are killed with the tab)."""
        try:
            tab.pidfd = os.pidfd_open(tab.pid)
        except OSError:
            tab.pidfd = -1
        stat = process_stat(tab.pid) if tab.pidfd >= 0 else None
        if stat is None or stat[1] != tab.started:  # gone, possibly with its pid reused
            self.ended(sandbox, tab.number)
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            loop.remove_reader(tab.pidfd)
            loop.call_later(SHELL_EXIT_GRACE, self.ended, sandbox, tab.number)

        loop.add_reader(tab.pidfd, exited)

    def ended(self, sandbox: Sandbox, number: int) -> None:
        """A tab's terminal ended (its shell exited, or it was closed): free it, once."""
        task = asyncio.ensure_future(self._close(sandbox, number, "shell_exited"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start(self, sandbox: Sandbox, number: int) -> Tab:
        try:
            fd, pid = await self.runtime.exec_terminal(sandbox.runtime_id, number)
        except SandboxError as exc:
            log.error("opening terminal %d of sandbox %s failed: %s", number, sandbox.sandbox_id, exc)
            raise AgentError("open_failed", str(exc)) from None
        stat = process_stat(pid)
        terminal = Terminal(fd, ReplayBuffer(self.replay_bytes), functools.partial(self.ended, sandbox, number))
        return Tab(number, terminal, pid, stat[1] if stat else 0)

    async def _close(self, sandbox: Sandbox, number: int, reason: str) -> bool:
        """Close tab ``number`` (viewers get ``exit`` with ``reason``), then kill what its shell left."""
        async with sandbox.lock:
            tab = self.drop(sandbox, number, reason)
            if tab is None:
                return False
            if self.registry.sandboxes.get(sandbox.sandbox_id) is sandbox:
                self._record(sandbox)
        try:
            await self.runtime.kill_session(sandbox.runtime_id, tab.pid, tab.started)
        except SandboxError as exc:
            log.warning("%s; the sandbox's destruction will end them", exc)
        log.info("closed terminal %d of sandbox %s (%s)", number, sandbox.sandbox_id, reason)
        return True

    def _record(self, sandbox: Sandbox) -> None:
        write_record(sandbox, self.runtime.sandbox_dir(sandbox.runtime_id))
