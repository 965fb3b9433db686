"""The agent's side of the terminal keeper (:mod:`sandbox.keeper`): hand it a duplicate of every
open terminal, take terminals back after a restart, let go of closed ones.

The keeper is optional: when it does not answer, :class:`KeptTerminals` logs what will not
survive an agent restart and carries on (only :meth:`KeptTerminals.keys` raises).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from sandbox.agent.records import Sandbox
from sandbox.keeper.client import KeeperClient, KeeperError
from sandbox.pty.terminal import Terminal
from sandbox.wire.replay import ReplayBuffer

log = logging.getLogger("sandbox.agent")


class KeptTerminals:
    """The terminals the keeper holds for this agent, by key (see :func:`records.tab_key`)."""

    def __init__(self, client: KeeperClient) -> None:
        self.client = client

    def keys(self) -> set[str]:
        """The keys the keeper holds; KeeperError if it does not answer."""
        return self.client.keys()

    def keep_first(self, sandbox: Sandbox) -> None:
        """Give the keeper a duplicate of the sandbox's first terminal, so the shell outlives this agent."""
        if sandbox.terminal is not None:
            self.keep(sandbox.runtime_id, sandbox.terminal)

    def keep(self, key: str, terminal: Terminal) -> None:
        """Give the keeper a duplicate of ``terminal`` (PTY master and replay memfd) under ``key``."""
        if terminal.fd < 0:
            return
        try:
            self.client.keep(key, [terminal.fd, terminal.replay.fd])
        except KeeperError as exc:
            log.warning("%s; terminal %s will not survive an agent restart", exc, key)

    def forget(self, key: str) -> None:
        """Make the keeper close its copy of terminal ``key``."""
        try:
            self.client.drop(key)
        except KeeperError as exc:
            log.warning("%s; the next reconciliation lets go of %s's terminal", exc, key)

    def take(self, key: str, on_exit: Callable[[], None] | None = None) -> Terminal | None:
        """The terminal the keeper holds under ``key`` (PTY master and replay buffer), or None."""
        try:
            fds = self.client.get(key)
        except KeeperError as exc:
            log.info("terminal %s cannot be adopted: %s", key, exc)
            return None
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return None
        try:
            replay = ReplayBuffer(0, fd=fds[1])
        except (OSError, ValueError) as exc:
            os.close(fds[0])
            log.info("terminal %s cannot be adopted: its replay buffer is unusable: %s", key, exc)
            return None
        return Terminal(fds[0], replay, on_exit)

    def sync(self, live: Iterable[Sandbox]) -> None:
        """Make the keeper hold exactly the live terminals (after a keeper restart, or a lost drop)."""
        try:
            kept = self.keys()
        except KeeperError:
            return  # not running: nothing to repair until it is back
        tracked = {key: terminal for s in live for key, terminal in s.kept_terminals().items()}
        for key in kept - set(tracked):
            self.forget(key)
        for key in set(tracked) - kept:
            log.info("reconcile: handing the terminal of %s to the keeper again", key)
            self.keep(key, tracked[key])
