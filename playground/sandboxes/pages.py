"""HTML pages: the landing page (Start with an image, the visitor's sessions) and the terminal page of a session."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.sandboxes import access, api


def landing(request: HttpRequest) -> HttpResponse:
    """The landing page; its script lists the visitor's sessions (``GET /api/sessions/``)."""
    images, default = api.offered_images()
    return render(
        request,
        "playground/landing.html",
        {"default_image": default, "images": images, "session_ttl": settings.PLAYGROUND.session_ttl},
    )


def session_page(request: HttpRequest, session_id: str) -> HttpResponse:
    parsed = access.parse_session_id(session_id)
    status = 200 if parsed else 404
    return render(request, "playground/session.html", {"session_id": str(parsed or "")}, status=status)
