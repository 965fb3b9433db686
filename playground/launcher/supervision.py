"""The launcher's parts as processes: how one runs, is stopped, and is started again after it died.

A :class:`Child` is one running part with a thread copying its output, each line prefixed with
its name. :class:`Restarts` and :class:`RestartPolicy` decide when a part that died starts again
and when the launcher gives up on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

STOP_TIMEOUT = 15.0  # seconds a part may take to stop after SIGTERM before it is killed


@dataclass(frozen=True)
class RestartPolicy:
    """How the launcher restarts a part that died: when, and when it gives up on it."""

    first_delay: float = 0.5  # seconds before the first restart
    max_delay: float = 10.0  # the delay doubles on each quick death, up to this
    healthy_after: float = 60.0  # a part that ran this long starts over with first_delay
    max_restarts: int = 5  # a part that dies more often than this within `window`...
    window: float = 60.0  # ...is given up on


class Restarts:
    """The recent deaths of one part, and the delay before its next start."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.deaths: deque[float] = deque()
        self.delay = 0.0

    def died(self, now: float, ran_for: float) -> float | None:
        """Record a death at ``now`` after ``ran_for`` seconds of running.

        Returns the seconds to wait before starting the part again, or None when it died more
        than ``max_restarts`` times within ``window`` seconds and must be given up on.
        """
        policy = self.policy
        self.deaths.append(now)
        while self.deaths[0] <= now - policy.window:
            self.deaths.popleft()
        if len(self.deaths) > policy.max_restarts:
            return None
        quick = self.delay > 0 and ran_for < policy.healthy_after
        self.delay = min(self.delay * 2, policy.max_delay) if quick else policy.first_delay
        return self.delay

    @property
    def recent(self) -> int:
        """Deaths within the window, as of the last one."""
        return len(self.deaths)


@dataclass
class Child:
    """A running part: its command line (to start it again), its process and its output pump.

    ``stop_timeout`` is how long :meth:`stop` waits after the one SIGTERM before SIGKILL.
    """

    name: str
    argv: list[str]
    as_web: bool
    proc: subprocess.Popen[bytes]
    stop_timeout: float = STOP_TIMEOUT
    started: float = field(default_factory=time.monotonic)
    terminated: bool = False  # SIGTERM was sent: it is never sent twice
    pump: threading.Thread = field(init=False)
    _terminating: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.pump = threading.Thread(target=_prefix_output, args=(self.name, self.proc), daemon=True)
        self.pump.start()

    def stop(self) -> None:
        """One SIGTERM, then SIGKILL after ``stop_timeout``; returns once the process is gone.

        A part is sent SIGTERM once only, however often it is stopped: a second signal while its
        handler runs can hang a part whose handler is not reentrant (Celery beat's is not).
        """
        if self.proc.poll() is None:
            with self._terminating:
                if not self.terminated:
                    self.terminated = True
                    signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                say(f"[launcher] {self.name} did not stop within {self.stop_timeout:g}s; killing it")
                signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
        self.pump.join(2)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (each part runs in a session of its own)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def say(text: str) -> None:
    """Print a line; if our own output is gone (a closed pipe or terminal), carry on silently.

    Stopping the children must never fail because nobody is reading the launcher's output.
    """
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _prefix_output(name: str, proc: subprocess.Popen[bytes]) -> None:
    """Copy a child's output with its name in front; keep draining it even if we cannot print."""
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        say(f"[{name}] {line.decode(errors='replace')}")
