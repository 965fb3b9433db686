"""What the workshops do when other apps change things: a learner's lab progress moving pushes their
row to the workshop's dashboards (:mod:`playground.workshops.consumers`)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from playground.labs.models import Progress
from playground.workshops import consumers
from playground.workshops.models import Learner

log = logging.getLogger("playground.workshops")


def progress_changed(sender: Any, progress: Progress, **details: Any) -> None:
    """``playground.labs.signals.progress_changed``: if the session is a learner's, tell their
    workshop's dashboards once the change commits. Never raises: the labs API answers its reader
    whatever the dashboards do."""
    try:
        learner = Learner.objects.filter(session_id=progress.session_id).values("pk", "workshop_id").first()
    except DatabaseError as exc:
        log.warning("cannot find the learner of session %s for the dashboard (%s)", progress.session_id, exc)
        return
    if learner is not None:
        consumers.learner_changed(learner["workshop_id"], learner["pk"])
