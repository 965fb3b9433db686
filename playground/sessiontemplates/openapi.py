"""The templates' part of the OpenAPI document (``/api/schema/``): their schemas and ``/api/templates/``."""

from __future__ import annotations

from typing import Any

TEMPLATE_SETUP: dict[str, Any] = {
    "type": "object",
    "description": "The setup of a session started from a template (docs/templates.md).",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "state": {"type": "string", "enum": ["waiting", "running", "done", "failed"]},
        "step": {"type": "integer", "description": "How many nodes' setups have run."},
        "total": {"type": "integer", "description": "The template's nodes."},
        "message": {"type": "string", "description": "A sentence: what runs, or why it failed."},
        "log": {"type": "string", "description": "Each script's output under a '== <node> (<role>)' line."},
    },
}
TEMPLATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "node1, node2, ..."},
                    "role": {"type": "string"},
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
