"""The ``workshop`` part of a learner's session JSON (``GET /api/sessions/<id>/``)."""

from __future__ import annotations

from typing import Any

from playground.sandboxes.models import Session
from playground.workshops.models import Learner, Workshop


def workshop_part(session: Session, language: str) -> dict[str, Any] | None:
    """Which workshop ``session`` belongs to, its learner's name and the workshop's last broadcast
    (``{message, from, sent_at}``, or None); None for a session of no workshop."""
    learner = Learner.objects.select_related("workshop").filter(session=session).first()
    if learner is None:
        return None
    workshop = learner.workshop
    return {"id": workshop.pk, "title": workshop.title, "learner": learner.name, "broadcast": last_broadcast(workshop)}


def last_broadcast(workshop: Workshop) -> dict[str, str] | None:
    """The workshop's last broadcast as the ``broadcast`` event gives it, or None if it has sent none."""
    if not workshop.broadcast_message or workshop.broadcast_at is None:
        return None
    sent_at = workshop.broadcast_at.isoformat()
    return {"message": workshop.broadcast_message, "from": workshop.broadcast_from, "sent_at": sent_at}
