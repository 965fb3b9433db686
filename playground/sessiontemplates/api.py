"""``GET /api/templates/``: the templates a visitor may start, for the page's template menu, their
words for people in the request's language."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.i18n import request_language
from playground.sandboxes.api import method_not_allowed
from playground.sessiontemplates.loader import Template, available


@csrf_exempt
def templates(request: HttpRequest) -> HttpResponse:
    """GET: every template that reads well, sorted by name (200)."""
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    language = request_language(request)
    return JsonResponse({"templates": [template_json(t, language) for _, t in sorted(available().items())]})


def template_json(template: Template, language: str) -> dict[str, Any]:
    """One entry of the menu: name, title, description and each node's role in ``language`` (else
    English), and each node's name and image (null: the host's default image, or the one the start names)."""
    return {
        "name": template.name,
        "title": template.title.in_language(language),
        "description": template.description.in_language(language),
        "nodes": [
            {"name": f"node{number}", "role": node.role.in_language(language), "image": node.image}
            for number, node in enumerate(template.nodes, 1)
        ],
    }
