"""The labs' part of the OpenAPI document (merged into ``/api/schema/`` by
:mod:`playground.sandboxes.openapi`)."""

from __future__ import annotations

from typing import Any

LAB_PROGRESS = {
    "type": "object",
    "description": "Only for a session started with a lab: where its reader is.",
    "required": ["slug", "language", "title", "steps", "current", "passed", "finished"],
    "properties": {
        "slug": {"type": "string"},
        "language": {"type": "string"},
        "title": {"type": "string"},
        "steps": {"type": "integer", "description": "How many steps the lab has."},
        "current": {"type": "integer", "description": "The step the reader is on (1-based)."},
        "passed": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Steps whose check passed, or that a skip did for the reader (read steps too).",
        },
        "read": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "The steps of 'passed' that have no check: read, with none of their commands checked.",
        },
        "finished": {"type": "boolean"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

CATALOGUE_ENTRY = {
    "type": "object",
    "properties": {
        "slug": {"type": "string"},
        "language": {"type": "string"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "image": {"type": "string"},
        "nodes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The image of each node the lab starts, node1 first.",
        },
        "duration_minutes": {"type": "integer"},
        "difficulty": {"type": "string", "enum": ["beginner", "intermediate", "advanced"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "steps": {"type": "integer"},
    },
}

LAB = {
    "type": "object",
    "description": "A catalogue entry whose steps are the list of steps.",
    "properties": {
        **{k: v for k, v in CATALOGUE_ENTRY["properties"].items() if k != "steps"},  # type: ignore[attr-defined]
        "intro_html": {"type": "string", "description": "Sanitised HTML."},
        "finish_html": {"type": "string", "description": "Sanitised HTML."},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "title": {"type": "string"},
                    "html": {
                        "type": "string",
                        "description": "Sanitised HTML; code blocks are div.lab-code with data-action run or copy.",
                    },
                    "foreground": {"type": "string"},
                    "has_setup": {"type": "boolean"},
                    "has_check": {"type": "boolean"},
                    "has_solve": {"type": "boolean"},
                },
            },
        },
    },
}

SCRIPT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "code": {"type": ["integer", "null"]},
        "output": {"type": "string"},
        "truncated": {"type": "boolean"},
        "timed_out": {"type": "boolean"},
        "message": {"type": "string"},
    },
}

CHECK = {
    "type": "object",
    "required": ["step", "passed", "output", "truncated", "timed_out", "message", "lab"],
    "properties": {
        "step": {"type": "integer"},
        "passed": {"type": "boolean", "description": "The check exited 0 (or the step has no check)."},
        "read": {"type": "boolean", "description": "The step has no check: it counts as read, not checked."},
        "output": {
            "type": "string",
            "description": "What the check printed (stdout and stderr): the hint. Plain text, never HTML.",
        },
        "truncated": {"type": "boolean", "description": "Cut at PLAYGROUND_CHECK_OUTPUT_LIMIT."},
        "timed_out": {"type": "boolean", "description": "Stopped at PLAYGROUND_CHECK_TIMEOUT."},
        "code": {"type": ["integer", "null"], "description": "Exit status; null when cut off."},
        "message": {"type": "string"},
        "lab": {"$ref": "#/components/schemas/LabProgress"},
    },
}

SCHEMAS = {"LabProgress": LAB_PROGRESS, "LabEntry": CATALOGUE_ENTRY, "Lab": LAB, "LabScript": SCRIPT, "LabCheck": CHECK}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


STEP_ERRORS = {
    "400": _error("Bad body (unknown field, or 'to' not a step number)."),
    "403": _error("Wrong or missing key, or sent from another site's page."),
    "404": _error("Unknown session (unknown_session), no lab (no_lab) or no such step (unknown_step)."),
    "409": _error("The session has ended (session_ended) or its sandbox is not running yet (not_ready)."),
    "429": _error("Two scripts already run in this sandbox (busy); Retry-After says when to try again."),
    "503": _error("The sandbox host is unavailable."),
}


def paths(session_id: dict[str, Any]) -> dict[str, Any]:
    """The labs' paths; ``session_id`` is the shared path parameter."""
    number = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    security: list[dict[str, list[str]]] = [{"sessionKey": []}, {"sessionCookie": []}]
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string", "maxLength": 200}}
        for name in ("q", "tag", "language")
    ]
    return {
        "/api/labs/": {
            "get": {
                "summary": "The lab catalogue (q: words in title, summary or tags; tag; language)",
                "parameters": query,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "labs": {"type": "array", "items": {"$ref": "#/components/schemas/LabEntry"}},
                                "tags": {"type": "array", "items": {"type": "string"}},
                                "languages": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "The matching labs.",
                    ),
                    "400": _error("A search term longer than 200 characters."),
                },
            }
        },
        "/api/labs/{slug}/": {
            "parameters": [slug],
            "get": {
                "summary": "One lab with its steps' text (not their scripts)",
                "parameters": [query[2]],
                "responses": {
                    "200": _ok({"$ref": "#/components/schemas/Lab"}, "The lab."),
                    "404": _error("Unknown lab (unknown_lab) or language (unknown_language)."),
                },
            },
        },
        "/api/sessions/{session_id}/lab/steps/{number}/open/": {
            "parameters": [session_id, number],
            "post": {
                "summary": "Open a step: its setup script runs in the sandbox; returns its foreground command",
                "security": security,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "step": {"type": "integer"},
                                "foreground": {"type": "string"},
                                "setup": {"oneOf": [{"$ref": "#/components/schemas/LabScript"}, {"type": "null"}]},
                                "lab": {"$ref": "#/components/schemas/LabProgress"},
                            },
                        },
                        "Opened.",
                    ),
                    **STEP_ERRORS,
                },
            },
        },
        "/api/sessions/{session_id}/lab/steps/{number}/check/": {
            "parameters": [session_id, number],
            "post": {
                "summary": "Run a step's check in the sandbox (exit 0 passes; its output is the hint)",
                "security": security,
                "responses": {"200": _ok({"$ref": "#/components/schemas/LabCheck"}, "Checked."), **STEP_ERRORS},
            },
        },
        "/api/sessions/{session_id}/lab/skip/": {
            "parameters": [session_id],
            "post": {
                "summary": "Skip to step N: the setup and solve of each earlier step not yet passed, then N's setup",
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["to"],
                                "additionalProperties": False,
                                "properties": {"to": {"type": "integer", "minimum": 1}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "step": {"type": "integer"},
                                "solved": {"type": "array", "items": {"type": "integer"}},
                                "foreground": {"type": "string"},
                                "setup": {"oneOf": [{"$ref": "#/components/schemas/LabScript"}, {"type": "null"}]},
                                "lab": {"$ref": "#/components/schemas/LabProgress"},
                            },
                        },
                        "Done.",
                    ),
                    **STEP_ERRORS,
                    "409": _error(
                        "A script failed (solve_failed: the reply has step, output and lab; the skip stopped "
                        "there), the session has ended, or its sandbox is not running yet."
                    ),
                },
            },
        },
    }
