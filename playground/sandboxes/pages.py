"""HTML pages: the landing page with its Start button and the terminal page of a session."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.sandboxes import access


def landing(request: HttpRequest) -> HttpResponse:
    cfg = settings.PLAYGROUND
    return render(
        request,
        "playground/landing.html",
        {
            "default_image": cfg.default_image,
            "images": [cfg.default_image],
            "session_ttl": cfg.session_ttl,
        },
    )


def session_page(request: HttpRequest, session_id: str) -> HttpResponse:
    parsed = access.parse_session_id(session_id)
    status = 200 if parsed else 404
    return render(request, "playground/session.html", {"session_id": str(parsed or "")}, status=status)
