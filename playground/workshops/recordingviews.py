"""The recordings' pages and files (docs/workshops.md, Recordings).

- ``/workshops/<id>/learners/<learner>/recordings/`` and ``.../recordings/<node>-<n>.cast``: the
  workshop's owner (or a superuser) replays or downloads a learner's recordings; another
  instructor's workshop, or a learner not in it, is a 404.
- ``/s/<session id>/recordings/`` and ``.../recordings/<node>-<n>.cast``: the session's own
  visitor (its cookie or ``Authorization: Session <key>``, as every session route) replays or
  downloads their recordings; another key is a 403.

A file is sent as an attachment (``application/x-asciicast``), which the page's player fetches too.
"""

from __future__ import annotations

import uuid

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground.i18n import request_language, translate
from playground.sandboxes import access
from playground.sandboxes.models import Session
from playground.workshops.models import Learner
from playground.workshops.recordings import Recording, find_recording, recordings_path, session_recordings
from playground.workshops.views import instructor_required, message_page, visible_workshops

CONTENT_TYPE = "application/x-asciicast"


def recordings_page(request: HttpRequest, session_id: uuid.UUID, title: str, base: str) -> HttpResponse:
    """The page that lists a session's recordings, each with a player and a download link."""
    language = request_language(request)
    items = [
        {
            "url": f"{base}{r.name}",
            "name": r.name,
            "label": translate(language, "recording.terminal", node=r.node, number=r.terminal),
        }
        for r in session_recordings(session_id)
    ]
    return render(request, "workshops/recordings.html", {"title": title, "recordings": items})


def cast_file(recording: Recording, filename: str) -> FileResponse:
    """The recording as a download named ``filename``."""
    response = FileResponse(recording.path.open("rb"), as_attachment=True, filename=filename, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "private, no-store"
    return response


def _learner(request: HttpRequest, workshop_id: int, learner_pk: int) -> Learner | None:
    """The learner ``learner_pk`` of a workshop the signed-in instructor may see, or None."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return None
    return Learner.objects.filter(workshop=workshop, pk=learner_pk).select_related("workshop").first()


@instructor_required
@require_GET
def learner_recordings(request: HttpRequest, workshop_id: int, learner_pk: int) -> HttpResponse:
    """GET: a learner's recordings, for their workshop's owner or a superuser."""
    learner = _learner(request, workshop_id, learner_pk)
    if learner is None:
        return message_page(request, 404, "recording.learner_not_found")
    title = translate(request_language(request), "recording.title", name=learner.name)
    return recordings_page(request, learner.session_id, title, recordings_path(workshop_id, learner_pk))


@instructor_required
@require_GET
def learner_recording(request: HttpRequest, workshop_id: int, learner_pk: int, name: str) -> HttpResponse:
    """GET: one of a learner's recordings, ``workshop-<code>-learner-<pk>-<node>-<n>.cast``."""
    learner = _learner(request, workshop_id, learner_pk)
    if learner is None:
        return message_page(request, 404, "recording.learner_not_found")
    recording = find_recording(learner.session_id, name)
    if recording is None:
        return message_page(request, 404, "recording.not_found")
    return cast_file(recording, f"workshop-{learner.workshop.join_code}-learner-{learner.pk}-{recording.name}")


def _own_session(request: HttpRequest, raw_id: str) -> tuple[Session | None, HttpResponse | None]:
    """The session ``raw_id`` if the request carries its key; else the refusal page (404 or 403)."""
    session_id = access.parse_session_id(raw_id)
    session = Session.objects.filter(pk=session_id).first() if session_id else None
    if session is None:
        return None, message_page(request, 404, "recording.unknown_session")
    if not session.key_matches(access.key_from_request(request, session.cookie_name)):
        return None, message_page(request, 403, "recording.not_yours")
    return session, None


@require_GET
def own_recordings(request: HttpRequest, session_id: str) -> HttpResponse:
    """GET: the recordings of the visitor's own session (a learner's)."""
    session, refusal = _own_session(request, session_id)
    if session is None:
        assert refusal is not None
        return refusal
    title = translate(request_language(request), "recording.own_title")
    return recordings_page(request, session.id, title, f"/s/{session.id}/recordings/")


@require_GET
def own_recording(request: HttpRequest, session_id: str, name: str) -> HttpResponse:
    """GET: one recording of the visitor's own session, as ``<node>-<n>.cast``."""
    session, refusal = _own_session(request, session_id)
    if session is None:
        assert refusal is not None
        return refusal
    recording = find_recording(session.id, name)
    if recording is None:
        return message_page(request, 404, "recording.not_found")
    return cast_file(recording, recording.name)
