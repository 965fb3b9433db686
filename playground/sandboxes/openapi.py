"""The OpenAPI 3.1 document served at ``/api/schema/``; tests check responses against it."""

from __future__ import annotations

from typing import Any

from playground.labs import openapi as lab_openapi

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code."},
        "message": {"type": "string", "description": "A sentence for people: what happened and what to do."},
    },
}

INSTANCE = {
    "type": "object",
    "required": ["name", "state", "terminal"],
    "properties": {
        "name": {"type": "string", "description": "Hostname inside the sandbox, e.g. node1."},
        "state": {"type": "string", "enum": ["requested", "provisioning", "running", "failed", "destroyed"]},
        "terminal": {"type": "string", "description": "Websocket path of this instance's terminal."},
    },
}

SESSION = {
    "type": "object",
    "required": ["id", "image", "state", "expires_at", "instances", "limits"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "key": {"type": "string", "description": "Secret granting access; only in the 201 reply."},
        "image": {"type": "string"},
        "state": {"type": "string", "enum": ["active", "ending", "ended"]},
        "ended_reason": {"type": ["string", "null"],
                         "enum": ["deleted", "expired", "idle", "failed", "out_of_resources", "host_lost",
                                  "shutdown", None]},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "max_expires_at": {"type": "string", "format": "date-time",
                           "description": "The latest expires_at can become by extensions."},
        "idle_expires_at": {"type": "string", "format": "date-time",
                            "description": "When the session ends for idleness unless a viewer connects (a "
                                           "connected viewer keeps moving it forward)."},
        "limits": {
            "type": "object",
            "properties": {"memory_bytes": {"type": "integer"}, "cpus": {"type": "number"},
                           "pids": {"type": "integer"}, "disk_bytes": {"type": "integer"}},
        },
        "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Instance"}},
        "lab": {"$ref": "#/components/schemas/LabProgress"},
    },
}


def _error_response(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def document() -> dict[str, Any]:
    session_id = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Playground API", "version": "1.0.0",
                 "description": "Start, inspect and end sandbox sessions. The terminal itself is a websocket "
                                "(see docs/architecture.md, 'Terminal websocket')."},
        "components": {
            "schemas": {
                **lab_openapi.SCHEMAS,  # the labs' part
                "Error": ERROR, "Instance": INSTANCE, "Session": SESSION},
            "securitySchemes": {
                "sessionKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                               "description": "'Session <key>' with the key from the 201 reply."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pg_<session id hex>"},
            },
        },
        "paths": {
            **lab_openapi.paths(session_id),
            "/api/sessions/": {
                "post": {
                    "summary": "Start a session",
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"image": {"type": "string", "default": "busybox"},
                                       "lab": {"type": "string", "description": "Start this lab (its image "
                                                                               "unless image is given)."},
                                       "language": {"type": "string", "description": "The lab's language "
                                                                                    "(en if it has it)."}}}}}},
                    "responses": {
                        "201": _json("Session", "Started; the reply carries the key, also set as a cookie."),
                        "400": _error_response("Bad body or unknown image (the reply lists the images)."),
                        "404": _error_response("Unknown lab or language (unknown_lab, unknown_language)."),
                        "403": _error_response("Sent from another site's page."),
                        "429": _error_response("This address has its most sessions running, or started its "
                                               "most within a minute.", retry_after=True),
                        "503": _error_response("Out of capacity or sandbox host unavailable.", retry_after=True),
                    },
                },
            },
            "/api/sessions/{session_id}/": {
                "parameters": [session_id],
                "get": {
                    "summary": "Inspect a session",
                    "security": [{"sessionKey": []}, {"sessionCookie": []}],
                    "responses": {
                        "200": _json("Session", "The session."),
                        "403": _error_response("Wrong or missing key."),
                        "404": _error_response("Unknown session."),
                    },
                },
                "delete": {
                    "summary": "End a session (repeating it is harmless)",
                    "security": [{"sessionKey": []}, {"sessionCookie": []}],
                    "responses": {
                        "204": {"description": "Ended, or already ended."},
                        "403": _error_response("Wrong or missing key."),
                        "404": _error_response("Unknown session."),
                    },
                },
            },
            "/api/sessions/{session_id}/extend/": {
                "parameters": [session_id],
                "post": {
                    "summary": "Add time to a session, up to its longest lifetime",
                    "security": [{"sessionKey": []}, {"sessionCookie": []}],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False}}}},
                    "responses": {
                        "200": _json("Session", "Extended; the reply carries the new expires_at."),
                        "400": _error_response("A body that is not an empty JSON object."),
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session."),
                        "409": _error_response("The session has ended (error 'session_ended') or already runs "
                                               "until its longest lifetime (error 'longest_lifetime')."),
                    },
                },
            },
            "/api/images/": {
                "get": {
                    "summary": "List the images a session can start",
                    "responses": {
                        "200": {"description": "Images.", "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"images": {"type": "array", "items": {
                                "type": "object", "required": ["name", "default", "ready"], "properties": {
                                    "name": {"type": "string"}, "default": {"type": "boolean"},
                                    "ready": {"type": "boolean", "description": "false: built on first use"},
                                    "tag": {"type": "string"}, "digest": {"type": "string"},
                                    "size": {"type": "integer", "description": "bytes of its layers"},
                                    "layers": {"type": "integer"}, "created": {"type": "string"},
                                    "source": {"type": "string"},
                                    "limits": {"type": "object", "description": "quotas of its sandboxes"},
                                }}}}}}}},
                        "503": _error_response("Sandbox host unavailable.", retry_after=True),
                    },
                },
            },
            "/api/schema/": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
        },
    }
