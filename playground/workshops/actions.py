"""What an instructor does to one learner or to the whole class (docs/workshops.md, Actions).

Every action is ``POST`` with a JSON body, for the workshop's owner or a superuser (another
instructor gets a 404, a visitor who is not a signed-in instructor a 403), CSRF-protected as every
form of the site. It answers ``{"ok": true, "message": sentence}`` or a 4xx ``{"error": code,
"message": sentence}``, the sentence in the instructor's language, and logs what it did.

The learners' pages hear of it through their session's event group (:mod:`playground.sandboxes.
events`): ``expiry`` after an extension, ``exit`` after an end, ``reset``, ``broadcast``, ``lab_step``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from playground.i18n import request_language, translate
from playground.labs import api as labs_api
from playground.labs import signals as lab_signals
from playground.labs.models import Lab, Progress
from playground.sandboxes import events, tasks
from playground.sandboxes.models import EndReason, Instance, Session
from playground.workshops.models import BROADCAST_LENGTH, Learner, Workshop

log = logging.getLogger("playground.workshops")

MAX_MINUTES = 240  # the most one extension adds, in minutes

Action = Callable[..., HttpResponse]


class Refused(Exception):
    """An action refused: its status, error code and catalogue key (holes in ``holes``)."""

    def __init__(self, status: int, code: str, key: str, **holes: object) -> None:
        super().__init__(code)
        self.status, self.code, self.key, self.holes = status, code, key, holes


def done(request: HttpRequest, key: str, **holes: object) -> JsonResponse:
    """The answer of an action that did what it was asked: ``ok`` and its sentence."""
    return JsonResponse({"ok": True, "message": translate(request_language(request), key, **holes)})


def refusal(request: HttpRequest, refused: Refused) -> JsonResponse:
    sentence = translate(request_language(request), refused.key, **refused.holes)
    return JsonResponse({"error": refused.code, "message": sentence}, status=refused.status)


def instructor_action(*accepted: str) -> Callable[[Action], Action]:
    """Guard an action taking ``(request, workshop, body, **url kwargs)``: a signed-in staff user, POST,
    the workshop theirs (or any, for a superuser), a JSON object body with only the ``accepted`` fields.
    A refusal (:class:`Refused`) raised by the action becomes its 4xx JSON."""

    def decorate(action: Action) -> Action:
        @wraps(action)
        def guarded(request: HttpRequest, workshop_id: int, **kwargs: object) -> HttpResponse:
            try:
                workshop = allowed_workshop(request, workshop_id)
                body = json_body(request, accepted)
                return action(request, workshop, body, **kwargs)
            except Refused as refused:
                response = refusal(request, refused)
                if refused.status == 405:
                    response["Allow"] = "POST"
                return response

        return guarded

    return decorate


def allowed_workshop(request: HttpRequest, workshop_id: int) -> Workshop:
    """The workshop ``workshop_id`` if the request may act on it with a POST; raises Refused."""
    if not request.user.is_authenticated:
        raise Refused(403, "not_signed_in", "workshop.action_sign_in")
    if not request.user.is_staff:
        raise Refused(403, "not_instructor", "workshop.not_instructor")
    if request.method != "POST":
        raise Refused(405, "method_not_allowed", "workshop.action_post_only")
    workshops = Workshop.objects.all() if request.user.is_superuser else Workshop.objects.filter(owner=request.user)
    workshop = workshops.filter(pk=workshop_id).first()
    if workshop is None:
        raise Refused(404, "unknown_workshop", "workshop.not_found")
    return workshop


def json_body(request: HttpRequest, accepted: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); raises Refused for anything else or a field
    not in ``accepted``."""
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_json", "workshop.action_bad_json") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_json", "workshop.action_bad_json")
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        fields = ", ".join(accepted) or "-"
        raise Refused(400, "unknown_field", "workshop.action_unknown_field", field=unknown[0], fields=fields)
    return body


def minutes_of(body: dict[str, Any]) -> int:
    """``minutes``: a whole number from 1 to MAX_MINUTES; raises Refused."""
    minutes = body.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise Refused(400, "bad_minutes", "workshop.action_bad_minutes", most=MAX_MINUTES)
    return minutes


def learner_of(workshop: Workshop, learner_pk: int) -> Learner:
    """The workshop's learner ``learner_pk`` with their session; raises Refused (404)."""
    learner = Learner.objects.select_related("session").filter(workshop=workshop, pk=learner_pk).first()
    if learner is None:
        raise Refused(404, "unknown_learner", "workshop.action_unknown_learner")
    return learner


def running(session: Session) -> bool:
    return session.state == Session.State.ACTIVE and session.expires_at > timezone.now()


def when(moment: datetime) -> str:
    """A time for a sentence: ``HH:MM`` UTC."""
    return moment.astimezone(UTC).strftime("%H:%M")


# ---- extend -----------------------------------------------------------------------------------


def extend_session(session_pk: Any, minutes: int, workshop_end: datetime) -> datetime | None:
    """Add ``minutes`` to an active session's expiry, up to the later of ``workshop_end`` and
    PLAYGROUND_SESSION_MAX_TTL after its start; its own ceiling (``ends_by``) and idle exemption move
    with it. Returns the new expiry (its viewers are told), or None when it did not move (ended, or
    at that latest already)."""
    max_ttl = timedelta(seconds=settings.PLAYGROUND.session_max_ttl)
    with transaction.atomic():
        session = Session.objects.select_for_update().filter(pk=session_pk).first()
        if session is None or not running(session):
            return None
        latest = max(workshop_end, session.created_at + max_ttl)
        expires = min(session.expires_at + timedelta(minutes=minutes), latest)
        if expires <= session.expires_at:
            return None
        exempt = session.idle_exempt_until
        Session.objects.filter(pk=session.pk).update(
            expires_at=expires,
            ends_by=max(session.ends_by or expires, expires),
            idle_exempt_until=max(exempt, expires) if exempt is not None else None,
        )
    events.session_extended(session.id, expires)
    return expires


@instructor_action("minutes")
def extend_learner(request: HttpRequest, workshop: Workshop, body: dict[str, Any], learner_pk: int) -> HttpResponse:
    """``{"minutes": 1..240}``: that learner's session ends so much later (see :func:`extend_session`)."""
    minutes = minutes_of(body)
    learner = learner_of(workshop, learner_pk)
    if not running(learner.session):
        raise Refused(409, "session_ended", "workshop.action_session_ended", name=learner.name)
    expires = extend_session(learner.session_id, minutes, workshop.ends_at)
    if expires is None:
        learner.session.refresh_from_db()
        if not running(learner.session):  # it ended meanwhile
            raise Refused(409, "session_ended", "workshop.action_session_ended", name=learner.name)
        raise Refused(409, "longest_lifetime", "workshop.action_longest", name=learner.name)
    log.info("%s extended %s's session in workshop %s to %s", request.user, learner.name, workshop.pk, expires)
    return done(request, "workshop.action_extended", name=learner.name, when=when(expires))


@instructor_action("minutes")
def extend_all(request: HttpRequest, workshop: Workshop, body: dict[str, Any]) -> HttpResponse:
    """``{"minutes": 1..240}``: the workshop ends so much later, and every running learner's session too."""
    minutes = minutes_of(body)
    if workshop.ends_at <= timezone.now():
        raise Refused(409, "workshop_over", "workshop.action_over")
    new_end = workshop.ends_at + timedelta(minutes=minutes)
    Workshop.objects.filter(pk=workshop.pk).update(ends_at=new_end)
    sessions = Session.objects.filter(learner__workshop=workshop, state=Session.State.ACTIVE)
    extended = sum(extend_session(pk, minutes, new_end) is not None for pk in sessions.values_list("pk", flat=True))
    log.info(
        "%s extended workshop %s by %d min to %s: %d sessions", request.user, workshop.pk, minutes, new_end, extended
    )
    return done(request, "workshop.action_extended_all", minutes=minutes, count=extended, when=when(new_end))


# ---- end and reset ----------------------------------------------------------------------------


@instructor_action()
def end_learner(request: HttpRequest, workshop: Workshop, body: dict[str, Any], learner_pk: int) -> HttpResponse:
    """End that learner's session as its time having run out (viewers told, sandboxes destroyed), as
    End now does for all; ``ok`` also when it had ended already."""
    learner = learner_of(workshop, learner_pk)
    if not tasks.end_session(learner.session_id, EndReason.EXPIRED):
        return done(request, "workshop.action_already_ended", name=learner.name)
    log.info("%s ended %s's session in workshop %s", request.user, learner.name, workshop.pk)
    return done(request, "workshop.action_ended", name=learner.name)


def replace_nodes(session: Session) -> tuple[list[Instance], list[Instance]]:
    """In one transaction with the session's row locked: each node it keeps is renamed aside and
    claimed for removal (-> REMOVING), and a new node of its name and image takes its place. Returns
    (old, new); both empty when the session is not running."""
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if not running(locked):
            return [], []
        old = list(locked.kept_nodes().order_by("created_at"))
        fresh = []
        for node in old:
            name = node.name
            node.transition(node.state, Instance.State.REMOVING, name=f"{name}-reset-{node.id.hex[:8]}")
            fresh.append(Instance.objects.create(session=locked, name=name, image=node.image))
    return old, fresh


def restart_lab(session: Session) -> None:
    """The session's lab progress back to its first step, nothing passed (``progress_changed`` sent)."""
    now = timezone.now()
    with transaction.atomic():
        progress = Progress.objects.filter(session=session).first()
        if progress is None:
            return
        progress.current, progress.passed, progress.failed_checks, progress.finished_at = 1, [], {}, None
        progress.step_started_at = progress.changed_at = now
        progress.save(
            update_fields=["current", "passed", "failed_checks", "finished_at", "step_started_at", "changed_at"]
        )
        lab_signals.progress_changed.send(Progress, progress=progress, kind="open", step=1, passed=None)


@instructor_action("confirm")
def reset_learner(request: HttpRequest, workshop: Workshop, body: dict[str, Any], learner_pk: int) -> HttpResponse:
    """``{"confirm": true}``: the learner's nodes are destroyed and new ones of the same names and images
    made in the same session; their lab starts again at step 1. Their page is told (``reset``) before
    the old sandboxes go, and its terminals reconnect to the new ones."""
    if body.get("confirm") is not True:
        raise Refused(400, "confirm_needed", "workshop.action_confirm_reset")
    learner = learner_of(workshop, learner_pk)
    old, fresh = replace_nodes(learner.session)
    if not fresh:
        raise Refused(409, "session_ended", "workshop.action_session_ended", name=learner.name)
    events.sandbox_reset(learner.session_id, [node.name for node in fresh])
    for node in old:
        tasks.enqueue(tasks.remove_instance, str(node.pk))  # else the reaper's sweep of stuck removals does
    for node in fresh:
        if not tasks.enqueue(tasks.provision_instance, str(node.pk)):
            node.transition(Instance.State.REQUESTED, Instance.State.FAILED, error="the task queue was unavailable")
            events.instance_status(node.id, Instance.State.FAILED, "The sandbox could not be started.")
    restart_lab(learner.session)
    log.info("%s reset %s's sandboxes in workshop %s (%d nodes)", request.user, learner.name, workshop.pk, len(fresh))
    return done(request, "workshop.action_reset", name=learner.name)


# ---- the whole class ----------------------------------------------------------------------------


def running_sessions(workshop: Workshop) -> list[Session]:
    """The sessions of the workshop's learners that are still running."""
    return [s for s in Session.objects.filter(learner__workshop=workshop, state=Session.State.ACTIVE) if running(s)]


def sender_name(request: HttpRequest) -> str:
    user = request.user
    return str(user.get_full_name() or user.get_username())  # type: ignore[union-attr]


@instructor_action("message")
def broadcast(request: HttpRequest, workshop: Workshop, body: dict[str, Any]) -> HttpResponse:
    """``{"message": 1..300 characters}``: a banner on every learner's page (``broadcast`` event), kept
    as the workshop's last broadcast for the pages that open later (the session JSON's ``workshop``)."""
    message = body.get("message")
    message = message.strip() if isinstance(message, str) else ""
    if not 1 <= len(message) <= BROADCAST_LENGTH:
        raise Refused(400, "bad_message", "workshop.action_bad_message", most=BROADCAST_LENGTH)
    sender, now = sender_name(request), timezone.now()
    Workshop.objects.filter(pk=workshop.pk).update(broadcast_message=message, broadcast_from=sender, broadcast_at=now)
    sessions = running_sessions(workshop)
    for session in sessions:
        events.broadcast(session.id, message, sender, now)
    log.info("%s broadcast to workshop %s (%d sessions): %r", request.user, workshop.pk, len(sessions), message)
    return done(request, "workshop.action_broadcast", count=len(sessions))


@instructor_action("step")
def push_step(request: HttpRequest, workshop: Workshop, body: dict[str, Any]) -> HttpResponse:
    """``{"step": n}``: every running learner's lab moves to step n (``progress_changed`` and
    ``lab_step``); the steps before it are not solved for them."""
    labs = Lab.objects.filter(slug=workshop.lab_slug)
    lab = (labs.filter(language=workshop.lab_language) if workshop.lab_language else labs).first()
    if not workshop.lab_slug or lab is None:
        raise Refused(400, "no_lab", "workshop.action_no_lab")
    total = lab.steps.count()
    step = body.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= total:
        raise Refused(400, "bad_step", "workshop.action_bad_step", total=total)
    sessions = running_sessions(workshop)
    progress = dict(Progress.objects.filter(session__in=sessions).values_list("session_id", "pk"))
    for session in sessions:
        if session.pk in progress:
            labs_api._record(progress[session.pk], step, [], "open")
            events.lab_step(session.id, step)
    log.info("%s pushed workshop %s to step %d (%d sessions)", request.user, workshop.pk, step, len(progress))
    return done(request, "workshop.action_step", step=step, count=len(progress))
