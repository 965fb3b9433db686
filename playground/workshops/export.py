"""The progress of a workshop's learners as CSV (``GET /workshops/<id>/progress.csv``, docs/workshops.md).

UTF-8 with a byte-order mark, so that Excel reads Korean names as written; one row per learner, in
the order they joined; times in ISO 8601 UTC. A cell that a spreadsheet would read as a formula
(a name typed as ``=1+1``) is written with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from playground.labs.models import Progress
from playground.workshops.models import Learner, Workshop
from playground.workshops.views import instructor_required, message_page, visible_workshops

HEADER = (
    "name",
    "joined_at",
    "session_state",
    "ended_reason",
    "current_step",
    "steps_passed",
    "passed_steps",
    "failed_checks",
    "finished_at",
    "last_activity",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as a CSV cell: times in ISO 8601, nothing for None, a formula-like text made inert."""
    if value is None:
        return ""
    text = value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def learner_row(learner: Learner, progress: Progress | None) -> list[str]:
    """One learner's row of HEADER (the lab's columns empty for a workshop without a lab)."""
    session = learner.session
    passed = sorted(progress.passed) if progress else []
    failed = (
        " ".join(f"{step}:{count}" for step, count in sorted(progress.failed_checks.items(), key=lambda i: int(i[0])))
        if progress
        else ""
    )
    last = max(session.last_activity, progress.changed_at) if progress else session.last_activity
    values: list[object] = [
        learner.name,
        learner.joined_at,
        session.state,
        session.ended_reason,
        progress.current if progress else None,
        len(passed) if progress else None,
        " ".join(str(step) for step in passed),
        failed,
        progress.finished_at if progress else None,
        last,
    ]
    return [cell(value) for value in values]


def progress_csv(workshop: Workshop) -> str:
    """The CSV text (with its byte-order mark) of every learner of ``workshop``."""
    learners = list(Learner.objects.filter(workshop=workshop).select_related("session"))
    progress = {p.session_id: p for p in Progress.objects.filter(session__learner__workshop=workshop)}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for learner in learners:
        writer.writerow(learner_row(learner, progress.get(learner.session_id)))
    return "\ufeff" + out.getvalue()


@instructor_required
@require_http_methods(["GET"])
def progress_download(request: HttpRequest, workshop_id: int) -> HttpResponse:
    """GET: the download ``workshop-<code>-progress.csv`` (an attachment); another's workshop is a 404."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return message_page(request, 404, "workshop.not_found")
    response = HttpResponse(progress_csv(workshop).encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="workshop-{workshop.join_code}-progress.csv"'
    return response
