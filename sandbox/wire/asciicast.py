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
    """The time of an event line, read without parsing the rest of it (0.0 if it cannot be read)."""
    try:
        return float(line[1 : line.index(b",")])
    except ValueError:
        return 0.0


def trim(content: bytes, limit: int) -> bytes:
    """``content`` (a header line, then event lines) within ``limit`` bytes: its newest events
    after one :data:`DROPPED` marker at the time of the first kept event; unchanged if it fits.
    A :data:`DROPPED` marker that would come first (an earlier trim's) is dropped too. Finds the
    cut by arithmetic and one search: no line is parsed but the first kept one's time."""
    if len(content) <= limit:
        return content
    head = content[: content.index(b"\n") + 1]
    room = len(event(float(2**40), "m", DROPPED))  # a marker's line at most
    start = max(len(head), len(content) + len(head) + room - limit)  # so head, marker and rest fit
    if content[start - 1 : start] != b"\n":  # within a line: keep from the next one
        newline = content.find(b"\n", start)
        start = len(content) if newline < 0 else newline + 1
    line_end = content.find(b"\n", start)
    if line_end >= 0 and content[start : line_end + 1].endswith(_DROPPED_END):
        start = line_end + 1
    rest = content[start:]
    if not rest:
        marker = event(0.0, "m", DROPPED)
        return head + marker if len(head) + len(marker) <= limit else head
    return head + event(event_time(rest), "m", DROPPED) + rest


# How a DROPPED marker's line ends; no output event's line can (quotes in its text are escaped).
_DROPPED_END = (", " + json.dumps("m") + ", " + json.dumps(DROPPED) + "]\n").encode()
