"""asciicast v2, the format of terminal recordings, and where a session's recordings live.

A recording is a header line, a JSON object ``{"version": 2, "width", "height", "timestamp",
"title"}``, then one JSON array per line: ``[seconds since the start, code, data]``, ``code``
being ``"o"`` (output: text), ``"r"`` (a resize: ``"COLSxROWS"``) or ``"m"`` (a marker: its
label). Output is UTF-8 text, so bytes are decoded incrementally (:class:`OutputText`): a
multibyte character split between two reads is written whole in the later event, and bytes
that are not UTF-8 become U+FFFD.

A recording is bounded: :func:`trim` drops its oldest events and puts one ``"m"`` event,
:data:`DROPPED`, where they were. The agent writes recordings (``sandbox.pty.recording``); the
web tier lists and serves them (it imports this module, which uses only the standard library).

Layout: ``<data>/recordings/<session id hex>/<node>-<terminal>.cast``.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

DROPPED = "output dropped"  # the marker put where trimmed events were
NAME = re.compile(r"^(?P<node>[a-z0-9][a-z0-9-]{0,62})-(?P<terminal>[0-9]{1,4})\.cast$")
SESSION = re.compile(r"^[0-9a-f]{32}$")


def recordings_dir(data_dir: Path) -> Path:
    """Where every session's recordings are: ``<data>/recordings``."""
    return data_dir / "recordings"


def recording_name(hostname: str, terminal: int) -> str:
    """The file name of terminal ``terminal`` of node ``hostname``: ``node1-0.cast``."""
    return f"{hostname}-{terminal}.cast"


def header(width: int, height: int, timestamp: float, title: str) -> bytes:
    """The header line of a new recording."""
    head = {"version": 2, "width": width, "height": height, "timestamp": int(timestamp), "title": title}
    return (json.dumps(head, ensure_ascii=False) + "\n").encode()


def event(seconds: float, code: str, data: str) -> bytes:
    """One event line: ``[seconds, code, data]``."""
    return (json.dumps([round(max(seconds, 0.0), 6), code, data], ensure_ascii=False) + "\n").encode()


class OutputText:
    """Terminal output bytes as text, across reads: a character split between two reads is kept
    until its end comes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, data: bytes) -> str:
        """The text of ``data`` and of what was kept from before, but an unfinished character."""
        return str(self._decoder.decode(data))


def event_time(line: bytes) -> float:
    """The time of an event line (0.0 if it cannot be read)."""
    try:
        value = json.loads(line)[0]
    except (ValueError, IndexError, KeyError, TypeError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def trim(head: bytes, events: list[bytes], limit: int) -> list[bytes]:
    """The newest of ``events`` (lines) that fit with ``head`` in ``limit`` bytes, after one
    :data:`DROPPED` marker at the time of the first kept event; ``events`` unchanged if they fit.
    A :data:`DROPPED` marker at the front (an earlier trim's) counts as dropped too."""
    total = len(head) + sum(len(e) for e in events)
    if total <= limit:
        return events
    kept = list(events)
    size = total
    while kept:
        first = kept[0]
        marker = event(event_time(first), "m", DROPPED)
        if size + len(marker) <= limit and not _is_dropped_marker(first):
            return [marker, *kept]
        size -= len(first)
        kept.pop(0)
    return [event(0.0, "m", DROPPED)] if len(head) + len(event(0.0, "m", DROPPED)) <= limit else []


def _is_dropped_marker(line: bytes) -> bool:
    try:
        parsed = json.loads(line)
    except ValueError:
        return False
    return isinstance(parsed, list) and parsed[1:] == ["m", DROPPED]
