"""The templates' part of the OpenAPI document (``/api/schema/``): their schemas and ``/api/templates/``."""

from __future__ import annotations

from typing import Any

from playground.i18n import LANGUAGE_COOKIE, LANGUAGES

IN_LANGUAGE = (
    f"in the request's language (the {LANGUAGE_COOKIE} cookie, else the first of {' and '.join(LANGUAGES)} "
    "in Accept-Language), else English when the template has no text in it"
)
LANGUAGE_PARAMETERS = [
    {
        "name": LANGUAGE_COOKIE,
        "in": "cookie",
        "required": False,
        "schema": {"type": "string", "enum": list(LANGUAGES)},
        "description": "The language switch of the page: the titles and descriptions' language.",
    },
    {
        "name": "Accept-Language",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "The titles and descriptions' language when the cookie chooses none.",
    },
]
TEMPLATE_SETUP: dict[str, Any] = {
    "type": "object",
    "description": "The setup of a session started from a template (docs/templates.md).",
    "properties": {
        "name": {"type": "string"},
        "title": {
            "type": "string",
            "description": f"The template's title, {IN_LANGUAGE}; its English one once the template left the host.",
        },
        "state": {"type": "string", "enum": ["waiting", "running", "done", "failed"]},
        "step": {"type": "integer", "description": "How many nodes' setups have run."},
        "total": {"type": "integer", "description": "The template's nodes."},
        "message": {"type": "string", "description": f"A sentence, {IN_LANGUAGE}: what runs, or why it failed."},
        "log": {"type": "string", "description": "Each script's output under a '== <node> (<role>)' line."},
    },
}
TEMPLATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string", "description": f"The template's title, {IN_LANGUAGE}."},
        "description": {"type": "string", "description": f"What the visitor gets, {IN_LANGUAGE} (may be empty)."},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "node1, node2, ..."},
                    "role": {"type": "string", "description": f"Words for people, {IN_LANGUAGE}."},
                    "image": {"type": ["string", "null"], "description": "null: the start's or the default image"},
                },
            },
        },
    },
}
SCHEMAS = {"TemplateSetup": TEMPLATE_SETUP, "Template": TEMPLATE}
START_FIELD = {
    "type": "string",
    "description": "Start this template: all its nodes, then each one's setup (not with lab).",
}
PATHS = {
    "/api/templates/": {
        "get": {
            "summary": "List the templates a session can start from",
            "description": f"Each template's title and description are {IN_LANGUAGE}.",
            "parameters": LANGUAGE_PARAMETERS,
            "responses": {
                "200": {
                    "description": "Templates, by name.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "templates": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}}
                                },
                            }
                        }
                    },
                }
            },
        }
    }
}
