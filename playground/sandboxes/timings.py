"""Timings of a session's life shared by the session clock of terminal viewers, the reaper and the API.

Pure functions (no Django, no I/O) so they are unit-tested on their own: when to warn a viewer
before the end, what the warning says, how often a connected viewer records activity, and how
durations read in the logs.
"""

from __future__ import annotations

import math

# (stage, lead in seconds, at most this fraction of the session's lifetime): viewers are warned
# 5 minutes and 1 minute before the end; a short session is warned proportionally earlier, so a
# session of 5 seconds is warned 2.5 s ("early") and 1 s ("final") before its end.
WARNINGS: tuple[tuple[str, float, float], ...] = (("early", 300.0, 0.5), ("final", 60.0, 0.2))

MAX_ACTIVITY_INTERVAL = 30.0


def warning_leads(lifetime: float) -> list[tuple[str, float]]:
    """Seconds before the end at which each stage is due, most distant first."""
    return [(stage, min(lead, fraction * max(0.0, lifetime))) for stage, lead, fraction in WARNINGS]


def due_stages(seconds_left: float, lifetime: float) -> list[str]:
    """The stages whose lead has been reached ``seconds_left`` before the end, most distant first."""
    return [stage for stage, lead in warning_leads(lifetime) if seconds_left <= lead]


def next_wake(seconds_left: float, lifetime: float, sent: set[str]) -> float:
    """Seconds until the next unsent stage falls due, or until the end; never negative."""
    waits = [
        seconds_left - lead for stage, lead in warning_leads(lifetime) if stage not in sent and lead < seconds_left
    ]
    return max(0.0, min([seconds_left, *waits]))


def duration_parts(seconds: float) -> tuple[int, str]:
    """How many of which unit ``seconds`` reads as: rounded hours from 90 minutes on, rounded
    minutes from 55 seconds on (a warning 59.9 s before the end reads '1 minute'), else whole
    seconds rounded up."""
    if seconds >= 5400:
        return round(seconds / 3600), "hour"
    if seconds >= 55:
        return round(seconds / 60), "minute"
    return max(1, math.ceil(seconds)), "second"


def humanize(seconds: float) -> str:
    """'8 hours', '5 minutes', '1 minute', '3 seconds' (see :func:`duration_parts`)."""
    count, unit = duration_parts(seconds)
    return f"{count} {unit}{'s' if count != 1 else ''}"


def warning_message(seconds_left: float, extendable: bool) -> str:
    """The sentence a viewer reads before the session's end."""
    when = humanize(seconds_left)
    if extendable:
        return f"This session ends in {when}. Press Extend to add time."
    return f"This session ends in {when} and cannot be extended further; save anything you need."


def activity_interval(idle_timeout: float) -> float:
    """How often a connected viewer records that the session is in use.

    A quarter of the idle timeout, between 1 and 30 seconds: one UPDATE per viewer at most every
    second, and a connected viewer's session is never older than a quarter of the timeout.
    """
    return min(MAX_ACTIVITY_INTERVAL, max(1.0, idle_timeout / 4))


def duration(seconds: float) -> str:
    """A duration for the logs: '4h00m', '12m', '7s'."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"
