"""The workshops' pages: the instructor's list and create form, the projector, and the learners' join.

Instructor pages need a signed-in staff user; an instructor sees only their own workshops (another's
is a 404), a superuser all. Every refusal is a 4xx page with a sentence in the visitor's language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

import segno
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from playground.i18n import request_language, translate
from playground.labs.models import Lab
from playground.sandboxes import api, tasks
from playground.sandboxes.models import EndReason, Session
from playground.workshops import forms, joining, preparing
from playground.workshops.models import CodeExhausted, Workshop

log = logging.getLogger("playground.workshops")

View = Callable[..., HttpResponse]


def instructor_required(view: View) -> View:
    """Let signed-in staff users through; send others to sign in, and a signed-in non-staff user a 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return message_page(request, 403, "workshop.not_instructor")
        return view(request, *args, **kwargs)

    return guarded


def message_page(request: HttpRequest, status: int, key: str, **holes: object) -> HttpResponse:
    """A page that says one sentence (``key`` of the catalogue) with ``status``."""
    sentence = translate(request_language(request), key, **holes)
    return render(request, "workshops/message.html", {"sentence": sentence}, status=status)


def visible_workshops(request: HttpRequest) -> QuerySet[Workshop]:
    """The workshops the signed-in user may see: their own, or every one for a superuser."""
    workshops = Workshop.objects.annotate(joined=Count("learners"))
    return workshops if request.user.is_superuser else workshops.filter(owner=request.user)


def form_choices() -> forms.Choices:
    """The labs installed (each language of each) and the images the landing page offers."""
    labs = [(f"{lab.slug}:{lab.language}", f"{lab.title} ({lab.language})") for lab in Lab.objects.all()]
    images, default = api.offered_images()
    return forms.Choices(labs=labs, images=images, default_image=default)


@instructor_required
@require_http_methods(["GET", "POST"])
def workshop_list(request: HttpRequest) -> HttpResponse:
    """GET: the instructor's workshops and a form for a new one; POST: create it (400 with its problems)."""
    choices = form_choices()
    problems: list[str] = []
    if request.method == "POST":
        fields, problems = forms.parse(request.POST, choices, timezone.now())
        if not problems:
            try:
                workshop = Workshop.objects.create(owner=request.user, **fields)
            except CodeExhausted:
                problems = ["workshop.error_no_code"]
            else:
                log.info("workshop %s (%s) created by %s", workshop.pk, workshop.join_code, request.user)
                return redirect("workshop-projector", workshop_id=workshop.pk)
    language = request_language(request)
    workshops = list(visible_workshops(request))
    describe_readiness(workshops, language)
    context = {
        "workshops": workshops,
        "now": timezone.now(),
        "choices": choices,
        "problems": [translate(language, key) for key in problems],
        "form": request.POST if problems else {},
    }
    return render(request, "workshops/list.html", context, status=400 if problems else 200)


def describe_readiness(workshops: list[Workshop], language: str) -> None:
    """Give each workshop being prepared its ``warm`` sentence ("ready: N of M sandboxes", or that the
    agent does not answer), from one request to the agent (preparing.readiness); the others get none."""
    found = preparing.readiness(timezone.now()) if workshops else {}
    for workshop in workshops:
        state, sentence = found.get(workshop.pk), ""
        if state is not None and state.ready is None:
            sentence = translate(language, "workshop.warm_unknown")
        elif state is not None:
            sentence = translate(language, "workshop.warm_ready", ready=state.ready, wanted=state.wanted)
        workshop.warm = sentence  # type: ignore[attr-defined]


@instructor_required
def projector(request: HttpRequest, workshop_id: int) -> HttpResponse:
    """The join code, very large, and the join URL with its QR code (inline SVG), for the room's screen."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return message_page(request, 404, "workshop.not_found")
    url = request.build_absolute_uri(workshop.join_path)
    qr = segno.make(url, error="m").svg_inline(scale=8, dark="#0d1117", light="#ffffff", title=url)
    return render(request, "workshops/projector.html", {"workshop": workshop, "url": url, "qr": qr})


@instructor_required
def dashboard_page(request: HttpRequest, workshop_id: int) -> HttpResponse:
    """The live dashboard of a workshop: its learners' rows, the step histogram and the help queue, filled
    and kept current by the page's script over ``ws/workshops/<id>/`` (playground.workshops.consumers)."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return message_page(request, 404, "workshop.not_found")
    return render(request, "workshops/dashboard.html", {"workshop": workshop})


@instructor_required
@require_http_methods(["POST"])
def end_workshop(request: HttpRequest, workshop_id: int) -> HttpResponse:
    """POST: end the workshop now: its end moves to now (no one joins any more) and every learner's
    session still running ends as its time having run out (viewers told, sandboxes destroyed)."""
    workshop = visible_workshops(request).filter(pk=workshop_id).first()
    if workshop is None:
        return message_page(request, 404, "workshop.not_found")
    now = timezone.now()
    if workshop.ends_at > now:
        Workshop.objects.filter(pk=workshop.pk).update(ends_at=now)
    running = Session.objects.filter(learner__workshop=workshop, state=Session.State.ACTIVE)
    ended = sum(tasks.end_session(pk, EndReason.EXPIRED) for pk in running.values_list("pk", flat=True))
    log.info("workshop %s (%s) ended by %s: %d sessions ended", workshop.pk, workshop.join_code, request.user, ended)
    messages.info(request, translate(request_language(request), "workshop.ended", title=workshop.title, count=ended))
    return redirect("workshops")


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, code: str = "") -> HttpResponse:
    """GET: the join form (the code filled from the URL); POST: join, then go to the session's page."""
    if request.method == "GET":
        return join_form(request, {"code": code})
    language = request_language(request)
    typed = {name: request.POST.get(name, "") for name in ("code", "name", "pin")}
    try:
        joining.check_rate(request)
        joined = joining.join(request, typed["code"], typed["name"], typed["pin"], language)
    except joining.JoinRefused as refused:
        sentence = refused.message or translate(language, refused.key, **refused.holes)
        response = join_form(request, typed, sentence, refused.status)
        if refused.retry_after is not None:
            response["Retry-After"] = str(refused.retry_after)
        return response
    if joined.pin is not None:
        messages.info(request, translate(language, "workshop.your_pin", name=joined.learner.name, pin=joined.pin))
    response = redirect("session", session_id=str(joined.session.id))
    api.set_session_cookie(request, response, joined.session, joined.key)
    log.info("%s joined workshop %s in session %s", joined.learner.name, joined.learner.workshop_id, joined.session.id)
    return response


def join_form(request: HttpRequest, typed: dict[str, str], problem: str = "", status: int = 200) -> HttpResponse:
    """The join page with what was typed (never the PIN) and the sentence of what went wrong, if anything."""
    context = {"code": typed.get("code", ""), "name": typed.get("name", ""), "problem": problem}
    return render(request, "workshops/join.html", context, status=status)
