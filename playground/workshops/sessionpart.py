"""The ``workshop`` part of a learner's session JSON (``GET /api/sessions/<id>/``)."""

from __future__ import annotations

from typing import Any

from playground.sandboxes.models import Session
from playground.workshops.models import HelpRequest, Learner, Workshop


def workshop_part(session: Session, language: str) -> dict[str, Any] | None:
    """Which workshop ``session`` belongs to, its learner's name, the workshop's last broadcast
    (``{message, from, sent_at}``, or None), the learner's raised hand (``{raised_at, sentence}``,
    or None) and the page of their terminals' recordings; None for a session of no workshop."""
    learner = Learner.objects.select_related("workshop").filter(session=session).first()
    if learner is None:
        return None
    workshop = learner.workshop
    return {
        "id": workshop.pk,
        "title": workshop.title,
        "learner": learner.name,
        "broadcast": last_broadcast(workshop),
        "hand": raised_hand(learner),
        "recordings": f"/s/{session.id}/recordings/",
    }


def last_broadcast(workshop: Workshop) -> dict[str, str] | None:
    """The workshop's last broadcast as the ``broadcast`` event gives it, or None if it has sent none."""
    if not workshop.broadcast_message or workshop.broadcast_at is None:
        return None
    sent_at = workshop.broadcast_at.isoformat()
    return {"message": workshop.broadcast_message, "from": workshop.broadcast_from, "sent_at": sent_at}


def raised_hand(learner: Learner) -> dict[str, str] | None:
    """The learner's open help request as ``{raised_at, sentence}``, or None when their hand is down."""
    request = HelpRequest.objects.filter(learner=learner, resolved_at__isnull=True).first()
    if request is None:
        return None
    return {"raised_at": request.raised_at.isoformat(), "sentence": request.sentence}
