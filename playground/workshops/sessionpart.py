"""The ``workshop`` part of a learner's session JSON (``GET /api/sessions/<id>/``)."""

from __future__ import annotations

from typing import Any

from playground.sandboxes.models import Session
from playground.workshops.models import Learner


def workshop_part(session: Session, language: str) -> dict[str, Any] | None:
    """Which workshop ``session`` belongs to and its learner's name; None for a session of no workshop."""
    learner = Learner.objects.select_related("workshop").filter(session=session).first()
    if learner is None:
        return None
    return {"id": learner.workshop_id, "title": learner.workshop.title, "learner": learner.name}
