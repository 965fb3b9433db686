"""Recordings of the terminals of sandboxes created with ``"record": true`` (a workshop's learners),
and the ``mark`` op that puts a marker into them.

Each terminal of such a sandbox (the first shell and every tab, also after an agent restart) is
written to ``<data>/recordings/<group>/<hostname>-<terminal>.cast`` (asciicast v2, see
:mod:`sandbox.pty.recording`), ``<group>`` being the session's id the web tier gives at ``create``.
The recordings directory and each session's directory belong to the web tier's user (mode
0750), who reads the files (mode 0640, theirs too) and deletes them after the retention period;
destroying a sandbox never deletes its recording. The agent opens every path component without
following symbolic links, so that user cannot make the agent write elsewhere.
"""

from __future__ import annotations

import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.agent.requestfields import Reply, Request
from sandbox.pty.recording import Recorder
from sandbox.pty.terminal import Terminal
from sandbox.wire import asciicast
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.agent")

MAX_LABEL = 200  # characters of a marker's label
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(eq=False)
class Recordings:
    """Starts recorders on the terminals of recorded sandboxes, under ``directory``."""

    directory: Path
    max_bytes: int
    web_user: str
    registry: Registry

    def start(self, sandbox: Sandbox, number: int, terminal: Terminal, fresh: bool) -> None:
        """Record terminal ``number`` of ``sandbox`` if the sandbox is recorded. ``fresh``: a new
        terminal, whose recording begins with what it has shown so far (a warm sandbox's prompt);
        otherwise (adopted from an earlier agent) its file is continued. A failure is logged and
        leaves the terminal unrecorded."""
        if not sandbox.recorded:
            return
        owner = self._owner()
        try:
            directory = self._session_directory(sandbox.group or sandbox.sandbox_id, owner)
        except OSError as exc:
            log.warning("terminal %d of sandbox %s is not recorded: %s", number, sandbox.sandbox_id, exc)
            return
        name = asciicast.recording_name(sandbox.hostname, number)
        title = f"{sandbox.hostname}, terminal {number}"
        recorder = Recorder(directory, name, terminal.window_size, self.max_bytes, title, owner)
        if fresh and len(terminal.replay):
            recorder.output(terminal.replay.contents())
        terminal.record(recorder)

    def _owner(self) -> tuple[int, int] | None:
        """The web user's uid and gid, or None (files stay root's) if there is no such user."""
        try:
            entry = pwd.getpwnam(self.web_user)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def _session_directory(self, session: str, owner: tuple[int, int] | None) -> int:
        """A descriptor of the session's directory, made if missing (and the recordings directory)."""
        if not self.directory.exists():
            self.directory.mkdir(mode=0o750, parents=True)
            if owner is not None:
                os.chown(self.directory, *owner, follow_symlinks=False)
        root = os.open(self.directory, DIRECTORY_FLAGS)
        try:
            try:
                os.mkdir(session, 0o750, dir_fd=root)
                if owner is not None:
                    os.chown(session, *owner, dir_fd=root, follow_symlinks=False)
            except FileExistsError:
                pass
            return os.open(session, DIRECTORY_FLAGS, dir_fd=root)
        finally:
            os.close(root)

    def flush_all(self) -> None:
        """Write what every recorder keeps in memory (before the agent exits leaving its sandboxes
        to the next one, which continues their files)."""
        for sandbox in self.registry.sandboxes.values():
            for terminal in sandbox.kept_terminals().values():
                if terminal.recorder is not None:
                    terminal.recorder.flush()

    async def mark(self, request: Request) -> Reply:
        """Put a marker with ``label`` into every recorded terminal of sandbox ``id``:
        ``{"marked": n}`` (0 for a sandbox that is not recorded)."""
        sandbox = self.registry.live(request)
        label = request.get("label")
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL:
            raise AgentError("bad_request", f"label={label!r} is invalid; use 1-{MAX_LABEL} characters")
        marked = 0
        for terminal in sandbox.kept_terminals().values():
            if terminal.recorder is not None:
                terminal.recorder.marker(label)
                marked += 1
        return {"marked": marked}
