"""HTML pages: the landing page (Start with an image or a template, the visitor's sessions) and the terminal page
of a session."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.i18n import request_language
from playground.sandboxes import access, api
from playground.sessiontemplates.api import template_json
from playground.sessiontemplates.loader import available


def landing(request: HttpRequest) -> HttpResponse:
    """The landing page: one node of an image, or a template's nodes (the entries of ``GET
    /api/templates/``, in the page so that the choice is there at once); its script lists the
    visitor's sessions (``GET /api/sessions/``)."""
    images, default = api.offered_images()
    language = request_language(request)
    templates = [template_json(template, language) for _, template in sorted(available().items())]
    context = {"default_image": default, "images": images, "templates": templates}
    return render(request, "playground/landing.html", {**context, "session_ttl": settings.PLAYGROUND.session_ttl})


def session_page(request: HttpRequest, session_id: str) -> HttpResponse:
    parsed = access.parse_session_id(session_id)
    status = 200 if parsed else 404
    return render(request, "playground/session.html", {"session_id": str(parsed or "")}, status=status)
