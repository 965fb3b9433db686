"""Stopping a long-running part on a signal without taking a lock inside the signal handler.

Python runs a signal's handler in the main thread between two bytecodes, possibly while that
thread holds the very lock the handler needs. A handler calling ``event.set()`` on the
:class:`threading.Event` the main thread is waiting on (``while not event.wait(1): ...``) then waits
for itself forever whenever the signal lands in the few bytecodes ``Event.wait`` runs with the
event's lock held. On a busy host that is rare but real: a SIGTERM sent by the kernel when the
launcher was killed (``setpriv --pdeathsig``) once left the registry store running for good.

:func:`set_on_signals` keeps the handler empty. The C-level handler writes the signal's number to a
socket (:func:`signal.set_wakeup_fd`); a daemon thread reads it and sets the event from outside
the signal's context. Imports only the standard library.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterable


def set_on_signals(event: threading.Event, signums: Iterable[signal.Signals]) -> None:
    """Set ``event`` soon after any of ``signums`` arrives; the signals no longer end the process.

    Call once per process, from the main thread (Python's rule for installing handlers and the
    wakeup fd). Other signals given Python handlers later are written to the same socket and
    ignored by the reader.
    """
    wanted = {int(signum) for signum in signums}
    reader, writer = socket.socketpair()  # both ends close on exec: no child inherits them
    writer.setblocking(False)  # the C handler must never block; a full buffer only drops a duplicate
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    for signum in wanted:
        signal.signal(signum, _nothing)
    threading.Thread(target=_watch, args=(reader, wanted, event), name="stop signals", daemon=True).start()
    _keep.append(writer)  # the wakeup fd stays open as long as the process


_keep: list[socket.socket] = []


def _nothing(signum: int, frame: object) -> None:
    """The Python-level handler: nothing here (the wakeup socket carries the signal)."""


def _watch(reader: socket.socket, wanted: set[int], event: threading.Event) -> None:
    """Set ``event`` at the first wanted signal number read from ``reader``; read until it closes."""
    while True:
        received = reader.recv(64)
        if not received:
            return
        if wanted.intersection(received):
            event.set()
