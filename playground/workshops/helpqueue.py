"""The help queue: a learner raises a hand (with an optional sentence) from their session's page, the
instructor sees the hands in the order they were raised on the dashboard and resolves them.

- ``POST /api/sessions/<id>/hand/`` ``{"sentence": "..."}`` (optional, up to SENTENCE_LENGTH
  characters) raises the learner's hand, or updates the sentence of the hand already raised (one
  open request per learner): ``200 {"hand": {"raised_at", "sentence"}}``. ``DELETE`` lowers it
  (``204``, also when none was raised). Authorized with the session's cookie or key, as every
  ``/api/sessions/<id>/...`` route; a session of no workshop is a 404, an ended one a 409.
- ``POST /workshops/<id>/help/<request>/resolve/``: the workshop's instructor (or a superuser)
  resolves a request: ``200 {"ok": true, "message"}``; one already resolved or lowered is a 409.

Each change tells the workshop's dashboards (``learner.changed``, :mod:`playground.workshops.consumers`)
and the learner's pages (the terminal's ``hand`` event), once committed.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from playground.i18n import request_language, translate
from playground.sandboxes import access, events
from playground.sandboxes.api import _authorized_session, _json_body, error, method_not_allowed
from playground.sandboxes.models import Session
from playground.workshops import consumers
from playground.workshops.models import SENTENCE_LENGTH, HelpRequest, Learner
from playground.workshops.sessionpart import raised_hand
from playground.workshops.views import instructor_required, message_page, visible_workshops

log = logging.getLogger("playground.workshops")

NOT_IN_WORKSHOP = "This session is not part of a workshop, so there is no instructor to raise a hand to."
SESSION_ENDED = "This session has ended, so its hand cannot be raised; join the workshop again with your name and PIN."
BAD_SENTENCE = f"'sentence' must be text of at most {SENTENCE_LENGTH} characters."


def clean_sentence(value: object) -> str | None:
    """The sentence with runs of white space made one space, or None if it is not text that fits."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return None
    sentence = " ".join(value.split())
    return sentence if len(sentence) <= SENTENCE_LENGTH and sentence.isprintable() else None


@csrf_exempt
def hand(request: HttpRequest, session_id: str) -> HttpResponse:
    """POST: raise the learner's hand (or update its sentence); DELETE: lower it (see the module)."""
    if request.method not in ("POST", "DELETE"):
        return method_not_allowed(request, ["POST", "DELETE"])
    session, problem = _authorized_session(request, session_id)
    if problem:
        return problem
    assert session is not None
    if access.cross_site(request):
        return error(403, "cross_site", "A hand can only be raised from this site's own pages.")
    learner = Learner.objects.filter(session=session).first()
    if learner is None:
        return error(404, "not_in_workshop", NOT_IN_WORKSHOP)
    if request.method == "DELETE":
        lower(learner)
        return HttpResponse(status=204)
    body, problem = _json_body(request, accepted=("sentence",))
    if problem:
        return problem
    sentence = clean_sentence(body.get("sentence"))
    if sentence is None:
        return error(400, "bad_sentence", BAD_SENTENCE, most=SENTENCE_LENGTH)
    if session.state != Session.State.ACTIVE:
        return error(409, "session_ended", SESSION_ENDED)
    raise_hand(learner, sentence)
    return JsonResponse({"hand": raised_hand(learner)})


def hand_changed(learner: Learner) -> None:
    """Once the current transaction commits: the workshop's dashboards get the learner's row, and the
    learner's pages (every tab) their hand as it is then."""
    consumers.learner_changed(learner.workshop_id, learner.pk)
    transaction.on_commit(lambda: events.hand(learner.session_id, raised_hand(learner)))


def raise_hand(learner: Learner, sentence: str) -> None:
    """Give the learner an open request with ``sentence``: the one already open (its place in the queue
    kept), or a new one at the queue's end."""
    with transaction.atomic():
        updated = HelpRequest.objects.filter(learner=learner, resolved_at__isnull=True).update(sentence=sentence)
        if not updated:
            try:
                with transaction.atomic():
                    HelpRequest.objects.create(learner=learner, sentence=sentence)
            except IntegrityError:  # raised twice at the same moment: the other one is the open one
                HelpRequest.objects.filter(learner=learner, resolved_at__isnull=True).update(sentence=sentence)
            log.info("%s raised a hand in workshop %s", learner.name, learner.workshop_id)
        hand_changed(learner)


def lower(learner: Learner) -> None:
    """Lower the learner's hand (resolved by nobody); nothing if none is raised."""
    with transaction.atomic():
        if HelpRequest.objects.filter(learner=learner, resolved_at__isnull=True).update(resolved_at=timezone.now()):
            hand_changed(learner)


@instructor_required
@require_http_methods(["POST"])
def resolve(request: HttpRequest, workshop_id: int, request_pk: int) -> HttpResponse:
    """POST: the instructor resolves a help request of their workshop (see the module)."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return message_page(request, 404, "workshop.not_found")
    language = request_language(request)
    mine = HelpRequest.objects.filter(pk=request_pk, learner__workshop=workshop)
    help_request = mine.select_related("learner").first()
    if help_request is None:
        return JsonResponse(
            {"error": "unknown_help_request", "message": translate(language, "help.unknown")}, status=404
        )
    with transaction.atomic():
        resolved = HelpRequest.objects.filter(pk=help_request.pk, resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=request.user
        )
        if resolved:
            hand_changed(help_request.learner)
    name = help_request.learner.name
    if not resolved:
        return JsonResponse(
            {"error": "already_resolved", "message": translate(language, "help.already_resolved", name=name)},
            status=409,
        )
    log.info("%s resolved %s's help request in workshop %s", request.user, name, workshop.pk)
    return JsonResponse({"ok": True, "message": translate(language, "help.resolved", name=name)})
