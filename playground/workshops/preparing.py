"""Preparing the room: pooled sandboxes reserved on the agent for the learners still to join.

Every PREPARE_INTERVAL seconds (beat, :func:`prepare_workshops`) the web tier reserves, as holder
``workshops``, the agent's ``reserve_warm``: for each workshop that starts within
PLAYGROUND_WORKSHOP_PREPARE_MINUTES or runs and has not ended, its capacity less the learners
joined, of the image its learners' first node gets (the lab's image for a lab workshop, else the
workshop's image), summed per image and at most PLAYGROUND_WORKSHOP_WARM_MAX in all (the
workshops starting first served first). The reservation lasts RESERVATION_TTL, three intervals:
a web tier or beat that stops leaves nothing reserved for long. The instructor's list shows how
many of a workshop's are ready (:func:`readiness`), from the agent's ``warm`` op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from playground.labs.sessions import LabChoiceError, find_lab
from playground.sandboxes.agentclient import client
from playground.sandboxes.api import available_images
from playground.workshops.models import Workshop
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.workshops")

HOLDER = "workshops"  # the reservation's holder on the agent
PREPARE_INTERVAL = 30.0  # seconds between two passes of the beat task
RESERVATION_TTL = int(3 * PREPARE_INTERVAL)  # seconds a reservation lasts unless renewed


@dataclass(frozen=True)
class Wanted:
    """Pooled sandboxes a workshop wants now: ``count`` of ``image``."""

    workshop_id: int
    image: str
    count: int


def preparing(now: datetime) -> list[Workshop]:
    """The workshops being prepared at ``now``: starting within PLAYGROUND_WORKSHOP_PREPARE_MINUTES,
    or running and not ended; earliest start first, each annotated with ``joined`` (its learners)."""
    soon = now + timedelta(minutes=settings.PLAYGROUND.workshop_prepare_minutes)
    workshops = Workshop.objects.filter(starts_at__lte=soon, ends_at__gt=now).annotate(joined=Count("learners"))
    return list(workshops.order_by("starts_at", "pk"))


def first_node_image(workshop: Workshop) -> str | None:
    """The image a learner's first node gets, as joining chooses it: the lab's (in the workshop's
    language) for a lab workshop, else the workshop's; None when its lab has gone (logged)."""
    if not workshop.lab_slug:
        return workshop.image
    try:
        return find_lab(workshop.lab_slug, workshop.lab_language or None).image
    except LabChoiceError as exc:
        log.warning("workshop %s is not prepared: %s", workshop.pk, exc.message)
        return None


def wanted(now: datetime, images: list[str] | None = None) -> list[Wanted]:
    """What each workshop being prepared wants (its capacity less its learners), earliest start
    first, cut so that the sum stays within PLAYGROUND_WORKSHOP_WARM_MAX; workshops wanting none,
    and with ``images`` (the agent's) those whose image is not among them (logged), are left out."""
    left = settings.PLAYGROUND.workshop_warm_max
    wants = []
    for workshop in preparing(now):
        image = first_node_image(workshop)
        count = min(left, max(0, workshop.capacity - workshop.joined))  # type: ignore[attr-defined]
        if images is not None and image is not None and image not in images:
            log.warning("workshop %s is not prepared: the sandbox host has no image %s", workshop.pk, image)
            continue
        if image is None or count == 0:
            continue
        wants.append(Wanted(workshop.pk, image, count))
        left -= count
    return wants


def sizes(wants: list[Wanted]) -> dict[str, int]:
    """The wants summed per image: the reservation's ``sizes``."""
    summed: dict[str, int] = {}
    for want in wants:
        summed[want.image] = summed.get(want.image, 0) + want.count
    return summed


@shared_task(name="playground.workshops.preparing.prepare_workshops")
def prepare_workshops() -> dict[str, int]:
    """Reserve on the agent what the workshops being prepared want (beat, every PREPARE_INTERVAL):
    the sizes reserved. A workshop whose image the agent does not have is left out (so it does not
    stop the others' reservation); an agent that does not answer or refuses is logged, never
    raised (``{}`` reserved): the next pass tries again, and joins start cold meanwhile."""
    try:
        reserved = sizes(wanted(timezone.now(), available_images()[0]))
        client().call("reserve_warm", holder=HOLDER, sizes=reserved, ttl=RESERVATION_TTL)
    except AgentError as exc:
        log.error("cannot reserve pooled sandboxes for the workshops: %s", exc.message)
        return {}
    return reserved


@dataclass(frozen=True)
class Readiness:
    """A workshop's pooled sandboxes: ``ready`` (None: the agent did not answer) of the ``wanted``
    (its learners still to join)."""

    ready: int | None
    wanted: int


def readiness(now: datetime) -> dict[int, Readiness]:
    """By workshop id, how many of the sandboxes each workshop being prepared wants are ready on the
    agent, from one ``warm`` request (none when no workshop wants any): the ready sandboxes of an
    image go to its workshops earliest start first."""
    wants = wanted(now)
    if not wants:
        return {}
    try:
        ready = {image: int(n) for image, n in client().call("warm").get("ready", {}).items()}
    except AgentError as exc:
        log.warning("cannot ask the agent how many pooled sandboxes are ready: %s", exc.message)
        return {want.workshop_id: Readiness(None, want.count) for want in wants}
    found = {}
    for want in wants:
        given = min(want.count, ready.get(want.image, 0))
        ready[want.image] = ready.get(want.image, 0) - given
        found[want.workshop_id] = Readiness(given, want.count)
    return found
