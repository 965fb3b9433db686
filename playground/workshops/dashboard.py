"""The instructor's dashboard of a workshop: one row per learner, the class's step histogram and the
help queue, as JSON for the dashboard's page and websocket (:mod:`playground.workshops.consumers`).

:func:`learner_row`, :func:`histogram` and :func:`help_entry` are pure: they compute from objects
already loaded and ``now``, so they are tested without a database or Channels. :func:`load_rows`
and :func:`load_help` load what they need in a fixed number of queries.

A row (all times ISO 8601 in UTC, or null):

- ``learner``, ``name``, ``session`` (the session's id), ``state`` (``active``, ``ending``,
  ``ended``), ``connected`` (a viewer recorded activity within :func:`connected_window`);
- ``step``, ``steps``, ``finished``: where the learner is in the workshop's lab (null for a free
  sandbox workshop); ``checks_passed`` (steps passed), ``checks_failed`` (failed checks, all
  steps), ``failed_here`` (failed checks of the current step);
- ``step_started_at`` (when they came to their step), ``last_activity`` (the later of the
  session's last sign of life and the lab's last open or check);
- ``stuck`` (true now), ``stuck_reason`` (``checks``: ``failed_here`` reached the workshop's
  ``stuck_failed_checks``; ``time``: ``stuck_minutes`` on a step not yet passed; else null) and
  ``stuck_at``: when the row becomes stuck for time if nothing changes (the page turns the flag on
  then by itself, so no server timer is needed; null when it cannot: no lab, finished, step
  passed, session ended);
- ``hand``: the open help request (``{"id", "raised_at", "sentence"}``) or null;
- ``watch``: the page that watches the learner's terminal;
- ``recordings``: the page that replays the recordings of the learner's terminals.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count

from playground.labs.models import Lab, Progress, Step
from playground.sandboxes import timings
from playground.sandboxes.models import Session
from playground.workshops.models import HelpRequest, Learner, Workshop
from playground.workshops.recordings import recordings_path


def connected_window() -> timedelta:
    """How recent a session's last activity must be for a viewer to count as connected: twice the
    interval at which a connected viewer records it (so one late record does not blink the flag)."""
    return timedelta(seconds=2 * timings.activity_interval(settings.PLAYGROUND.idle_timeout))


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def watch_path(learner: Learner) -> str:
    """The page where the instructor watches (and may take over) the learner's terminal."""
    return f"/workshops/{learner.workshop_id}/learners/{learner.pk}/watch/"


def stuck_state(
    workshop: Workshop, session: Session, progress: Progress | None, now: datetime
) -> tuple[str | None, datetime | None]:
    """Why the learner is stuck now (``checks``, ``time``, or None) and when they become stuck for time
    if nothing changes (None when they cannot: no lab, lab finished, step passed, session ended)."""
    if progress is None or progress.finished_at is not None or session.state != Session.State.ACTIVE:
        return None, None
    if progress.current in progress.passed:
        return None, None  # passed, not yet on to the next step: not stuck
    if progress.failures(progress.current) >= workshop.stuck_failed_checks:
        return "checks", None
    stuck_at = progress.step_started_at + timedelta(minutes=workshop.stuck_minutes)
    return ("time" if now >= stuck_at else None), stuck_at


def learner_row(
    workshop: Workshop,
    learner: Learner,
    session: Session,
    progress: Progress | None,
    steps: int | None,
    hand: HelpRequest | None,
    now: datetime,
    window: timedelta,
) -> dict[str, Any]:
    """The dashboard's row of ``learner`` (see the module): their ``session``, its lab ``progress``
    (None: a free sandbox) of a lab of ``steps`` steps, their open help request ``hand``, at ``now``;
    ``window`` is :func:`connected_window`."""
    reason, stuck_at = stuck_state(workshop, session, progress, now)
    last = session.last_activity
    if progress is not None and progress.changed_at > last:
        last = progress.changed_at
    active = session.state == Session.State.ACTIVE
    return {
        "learner": learner.pk,
        "name": learner.name,
        "session": str(session.id),
        "state": session.state,
        "connected": active and now - session.last_activity <= window,
        "step": progress.current if progress is not None else None,
        "steps": steps if progress is not None else None,
        "finished": progress is not None and progress.finished_at is not None,
        "checks_passed": len(progress.passed) if progress is not None else 0,
        "checks_failed": sum(int(n) for n in progress.failed_checks.values()) if progress is not None else 0,
        "failed_here": progress.failures(progress.current) if progress is not None else 0,
        "step_started_at": iso(progress.step_started_at) if progress is not None else None,
        "last_activity": iso(last),
        "stuck": reason is not None,
        "stuck_reason": reason,
        "stuck_at": iso(stuck_at),
        "hand": help_entry(hand) if hand is not None else None,
        "watch": watch_path(learner),
        "recordings": recordings_path(learner.workshop_id, learner.pk),
    }


def help_entry(request: HelpRequest) -> dict[str, Any]:
    """A raised hand as a row's ``hand`` says it."""
    return {"id": request.pk, "raised_at": iso(request.raised_at), "sentence": request.sentence}


def histogram(rows: list[dict[str, Any]], steps: int | None) -> dict[str, Any] | None:
    """How many learners are on each step (``counts[i]``: step i + 1) and how many finished the lab, of
    the learners whose session is not ended; None for a workshop without a lab (``steps`` None)."""
    if steps is None:
        return None
    live = [row for row in rows if row["state"] != Session.State.ENDED and row["step"] is not None]
    on_step = Counter(row["step"] for row in live if not row["finished"])
    return {
        "steps": steps,
        "counts": [on_step.get(number, 0) for number in range(1, steps + 1)],
        "finished": sum(1 for row in live if row["finished"]),
    }


def lab_steps(workshop: Workshop) -> int | None:
    """How many steps the workshop's lab has (None for free sandboxes, or a lab no longer installed)."""
    if not workshop.lab_slug:
        return None
    labs = Lab.objects.filter(slug=workshop.lab_slug)
    lab = (labs.filter(language=workshop.lab_language) if workshop.lab_language else labs).first()
    return lab.steps.count() if lab is not None else None


def _rows(workshop: Workshop, learners: list[Learner], now: datetime) -> list[dict[str, Any]]:
    """The rows of ``learners`` (their sessions selected), in four queries whatever their number."""
    progresses = {p.session_id: p for p in Progress.objects.filter(session__in=[x.session for x in learners])}
    steps = dict(
        Step.objects.filter(lab__in={p.lab_id for p in progresses.values()})
        .values("lab")
        .annotate(n=Count("pk"))
        .values_list("lab", "n")
    )
    hands = {h.learner_id: h for h in HelpRequest.objects.filter(learner__in=learners, resolved_at__isnull=True)}
    window = connected_window()
    rows = []
    for learner in learners:
        progress = progresses.get(learner.session_id)
        count = steps.get(progress.lab_id, 0) if progress is not None else None
        rows.append(
            learner_row(workshop, learner, learner.session, progress, count, hands.get(learner.pk), now, window)
        )
    return rows


def load_rows(workshop: Workshop, now: datetime) -> list[dict[str, Any]]:
    """Every learner's row, in the order they joined."""
    return _rows(workshop, list(workshop.learners.select_related("session")), now)


def load_rows_of(workshop: Workshop, learner_pks: set[int], now: datetime) -> list[dict[str, Any]]:
    """The rows of the learners ``learner_pks`` (those of ``workshop``; others are left out), in the
    same four queries however many."""
    return _rows(workshop, list(workshop.learners.select_related("session").filter(pk__in=learner_pks)), now)


def load_help(workshop: Workshop) -> list[dict[str, Any]]:
    """The open help requests, first raised first: ``{"id", "learner", "name", "raised_at",
    "sentence", "watch"}``."""
    queue = HelpRequest.objects.filter(learner__workshop=workshop, resolved_at__isnull=True).select_related("learner")
    return [
        {**help_entry(request), "learner": request.learner_id, "name": request.learner.name}
        | {"watch": watch_path(request.learner)}
        for request in queue
    ]


def snapshot(workshop: Workshop, now: datetime) -> dict[str, Any]:
    """The dashboard's whole state: ``{"type": "snapshot", "rows", "histogram", "help", "settings"}``."""
    rows = load_rows(workshop, now)
    return {
        "type": "snapshot",
        "rows": rows,
        "histogram": histogram(rows, lab_steps(workshop)),
        "help": load_help(workshop),
        "settings": {
            "stuck_failed_checks": workshop.stuck_failed_checks,
            "stuck_minutes": workshop.stuck_minutes,
        },
        "now": iso(now),
    }
