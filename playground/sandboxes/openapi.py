"""The OpenAPI 3.1 document served at ``/api/schema/``; tests check responses against it."""

from __future__ import annotations

from typing import Any

from playground.labs import openapi as lab_openapi
from playground.ports import openapi as ports_openapi
from playground.sessiontemplates import openapi as templates_openapi

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code."},
        "message": {
            "type": "string",
            "description": "A sentence for people: what happened and what to do. In the request's language "
            "(the playground_language cookie, else Accept-Language; Content-Language says which) where it is "
            "translated, else English.",
        },
    },
    "additionalProperties": {"description": "Details some errors give: limit, step, path, node, output..."},
}

INSTANCE = {
    "type": "object",
    "required": ["name", "state", "image", "address", "terminal", "created_at"],
    "properties": {
        "name": {
            "type": "string",
            "description": "The node's name and hostname: node1, node2, ... (never reused within a session).",
        },
        "state": {
            "type": "string",
            "enum": ["requested", "provisioning", "running", "removing", "failed", "destroyed"],
        },
        "image": {"type": "string", "description": "The node's image (node1's is the session's)."},
        "address": {
            "type": ["string", "null"],
            "description": "The node's IPv4 address on the session's private network; null unless running.",
        },
        "terminal": {"type": "string", "description": "Websocket path of this instance's terminal."},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

NODE = {
    "allOf": [
        {"$ref": "#/components/schemas/Instance"},
        {
            "type": "object",
            "required": ["stats", "ports"],
            "properties": {
                "stats": {
                    "type": ["object", "null"],
                    "description": "Live use, read from the sandbox host; null when it cannot say.",
                    "properties": {
                        "memory_bytes": {"type": "integer"},
                        "memory_limit_bytes": {"type": "integer"},
                        "cpu_seconds": {"type": "number", "description": "CPU time used since it started."},
                    },
                },
                "ports": {
                    "type": "array",
                    "description": "The TCP ports listening on the node's address (not loopback-only), "
                    "and ports with options set, each as its port JSON (docs/ports.md).",
                    "items": {"$ref": "#/components/schemas/Port"},
                },
            },
        },
    ]
}

SESSION = {
    "type": "object",
    "required": ["id", "image", "state", "expires_at", "instances", "limits"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "key": {"type": "string", "description": "Secret granting access; only in the 201 reply."},
        "image": {"type": "string"},
        "state": {"type": "string", "enum": ["active", "ending", "ended"]},
        "ended_reason": {
            "type": ["string", "null"],
            "enum": ["deleted", "expired", "idle", "failed", "out_of_resources", "host_lost", "shutdown", None],
        },
        "ended_message": {
            "type": ["string", "null"],
            "description": "Why the session ended, as a sentence for the visitor; null while it runs.",
        },
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "max_expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "The latest expires_at can become by extensions.",
        },
        "idle_expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the session ends for idleness unless a viewer connects (a "
            "connected viewer keeps moving it forward); no earlier than the end of the workshop "
            "it belongs to when that workshop keeps idle sessions (docs/workshops.md).",
        },
        "limits": {
            "type": "object",
            "properties": {
                "memory_bytes": {"type": "integer"},
                "cpus": {"type": "number"},
                "pids": {"type": "integer"},
                "disk_bytes": {"type": "integer"},
            },
        },
        "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Instance"}},
        "lab": {"$ref": "#/components/schemas/LabProgress"},
        "template": {"$ref": "#/components/schemas/TemplateSetup"},
        "workshop": {
            "type": "object",
            "description": "Only for a learner's session of a workshop (docs/workshops.md): the workshop "
            "and the learner's display name.",
            "required": ["id", "title", "learner"],
            "properties": {
                "id": {"type": "integer"},
                "title": {"type": "string"},
                "learner": {"type": "string", "description": "The name the learner joined with."},
                "broadcast": {
                    "type": ["object", "null"],
                    "description": "The instructor's last message to the class (the terminal's broadcast "
                    "event), or null if none was sent.",
                    "required": ["message", "from", "sent_at"],
                    "properties": {
                        "message": {"type": "string", "maxLength": 300},
                        "from": {"type": "string", "description": "The sender's display name."},
                        "sent_at": {"type": "string", "format": "date-time"},
                    },
                },
                "recordings": {
                    "type": "string",
                    "description": "The page that replays the recordings of the learner's terminals "
                    "(docs/workshops.md, Recordings).",
                },
                "hand": {
                    "type": ["object", "null"],
                    "description": "The learner's raised hand, in the instructor's help queue until resolved "
                    "(POST /api/sessions/{session_id}/hand/ raises it, DELETE lowers it), or null.",
                    "required": ["raised_at", "sentence"],
                    "properties": {
                        "raised_at": {"type": "string", "format": "date-time"},
                        "sentence": {"type": "string", "maxLength": 200, "description": "Empty: none given."},
                    },
                },
            },
        },
        "registry": {
            "type": "object",
            "description": "The session registry's login while the session is active (docs/registry.md, "
            "Pushing): docker login <address> with user and password; images named <prefix>NAME:TAG.",
            "required": ["address", "user", "password", "prefix", "quota_bytes"],
            "properties": {
                "address": {"type": "string", "example": "registry:5050"},
                "user": {"type": "string", "description": "The session's namespace.", "example": "pg-3f9a2c1b4d5e"},
                "password": {"type": "string"},
                "prefix": {"type": "string", "example": "registry:5050/pg-3f9a2c1b4d5e/"},
                "quota_bytes": {"type": "integer"},
            },
        },
    },
}


KEYED: list[dict[str, list[str]]] = [
    {"sessionKey": []},
    {"sessionCookie": []},
]  # the session's key, in the header or the cookie
EMPTY_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False}}},
}

TERMINAL = {
    "type": "object",
    "required": ["id", "terminal"],
    "properties": {
        "id": {
            "type": "integer",
            "minimum": 0,
            "description": "0 is the instance's first shell; tabs count up from 1 and numbers are never reused.",
        },
        "terminal": {
            "type": "string",
            "description": "Websocket path of this terminal (same protocol and authentication as the instance's).",
        },
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
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _node_paths(session_id: dict[str, Any], instance_name: dict[str, Any]) -> dict[str, Any]:
    """The paths of a session's nodes (docs/nodes.md)."""
    return {
        "/api/sessions/{session_id}/instances/": {
            "parameters": [session_id],
            "get": {
                "summary": "List the session's nodes (not destroyed) with their live stats and ports",
                "security": KEYED,
                "responses": {
                    "200": {
                        "description": "The nodes; never a 500 when the sandbox host is down (stats are null).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["instances"],
                                    "properties": {
                                        "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
                                    },
                                }
                            }
                        },
                    },
                    "403": _error_response("Wrong or missing key."),
                    "404": _error_response("Unknown session."),
                },
            },
            "post": {
                "summary": "Add a node: node<n>, n one more than the highest the session ever used",
                "security": KEYED,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "image": {"type": "string", "description": "The session's image by default."}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json("Instance", "Added; it starts at once (watch its state, or open its terminal)."),
                    "400": _error_response("Bad body or unknown image (bad_json, unknown_field, unknown_image)."),
                    "403": _error_response("Wrong or missing key, or sent from another site's page."),
                    "404": _error_response("Unknown session."),
                    "409": _error_response(
                        "The session has PLAYGROUND_MAX_NODES nodes ('too_many_nodes'), or has ended ('session_ended')."
                    ),
                    "503": _error_response(
                        "The host runs its most nodes ('at_capacity', PLAYGROUND_MAX_SESSIONS), or the sandbox "
                        "host or the task queue is unavailable.",
                        retry_after=True,
                    ),
                },
            },
        },
        "/api/sessions/{session_id}/instances/{name}/": {
            "parameters": [session_id, instance_name],
            "delete": {
                "summary": "Remove a node: only its sandbox ends, its viewers are told (repeating it is harmless)",
                "security": KEYED,
                "responses": {
                    "204": {"description": "Removed, being removed, or going with its ended session."},
                    "403": _error_response("Wrong or missing key, or sent from another site's page."),
                    "404": _error_response("Unknown session, or no node of that name ('unknown_instance')."),
                    "409": _error_response("The session's last node ('last_node'): end the session instead."),
                },
            },
        },
    }


def _file_paths(session_id: dict[str, Any], instance_name: dict[str, Any]) -> dict[str, Any]:
    """The path of files in and out of a node (docs/files.md)."""
    query = [
        {
            "name": "path",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "maxLength": 4096},
            "description": "The file's path in the node; a relative one goes to terminal's current directory, "
            "or /root.",
        },
        {
            "name": "terminal",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "The terminal (tab) whose current directory a relative path is resolved against.",
        },
    ]
    refusals = {
        "400": _error_response("no_file (no body), bad_path, bad_terminal, is_directory."),
        "403": _error_response("Wrong or missing key, or an upload sent from another site's page."),
        "404": _error_response("no_such_file (or no such directory), unknown_instance, unknown_terminal."),
        "409": _error_response("The node is not running ('not_running') or the session has ended.", retry_after=True),
        "413": _error_response("too_large: over PLAYGROUND_UPLOAD_LIMIT (default 50 MB), the sizes in words."),
        "503": _error_response(
            "Sandbox host unavailable, busy moving other sessions' files for 30 s (host_busy), or the transfer "
            "timed out.",
            retry_after=True,
        ),
    }
    return {
        "/api/sessions/{session_id}/instances/{name}/files/": {
            "parameters": [session_id, instance_name, *query],
            "put": {
                "summary": "Upload a file to the node: the raw body is the file; an existing file is replaced",
                "security": KEYED,
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": {
                    "201": {
                        "description": "Written, as the node's root, inside the node.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["path", "size"],
                                    "properties": {
                                        "path": {"type": "string", "description": "Absolute path in the node."},
                                        "size": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **refusals,
                    "507": _error_response("disk_full: the node's disk is full; nothing of the file was left."),
                },
            },
            "get": {
                "summary": "Download a file of the node, as an attachment",
                "security": KEYED,
                "responses": {
                    "200": {
                        "description": "The file's bytes (Content-Disposition: attachment).",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **refusals,
                },
            },
        },
        "/api/sessions/{session_id}/home.tar": {
            "parameters": [
                session_id,
                {
                    "name": "node",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "default": "node1"},
                    "description": "The node whose /root is packed.",
                },
            ],
            "get": {
                "summary": "Download /root of a node (node1 unless named), packed by the node's own tar",
                "security": KEYED,
                "responses": {
                    "200": {
                        "description": "A tar (Content-Disposition: attachment; node1-home.tar); paths start ./",
                        "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "400": _error_response("bad_path: the node's image has no tar."),
                    "403": _error_response("Wrong or missing key."),
                    "404": _error_response("unknown_session, unknown_instance."),
                    "409": _error_response("The node is not running ('not_running') or the session has ended."),
                    "413": _error_response("home_too_large: over PLAYGROUND_UPLOAD_LIMIT, named in the message."),
                    "503": _error_response(
                        "Sandbox host unavailable, busy moving other sessions' files for 30 s (host_busy), or "
                        "packing timed out.",
                        retry_after=True,
                    ),
                },
            },
        },
    }


def document() -> dict[str, Any]:
    session_id = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    instance_name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The instance's name, e.g. node1.",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Playground API",
            "version": "1.0.0",
            "description": "Start, inspect and end sandbox sessions. The terminal itself is a websocket "
            "(see docs/architecture.md, 'Terminal websocket').",
        },
        "components": {
            "schemas": {
                **lab_openapi.SCHEMAS,  # the labs' part
                **templates_openapi.SCHEMAS,
                **ports_openapi.SCHEMAS,
                "Error": ERROR,
                "Instance": INSTANCE,
                "Node": NODE,
                "Session": SESSION,
                "Terminal": TERMINAL,
            },
            "securitySchemes": {
                "sessionKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Session <key>' with the key from the 201 reply.",
                },
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pg_<session id hex>"},
            },
        },
        "paths": {
            **lab_openapi.paths(session_id),
            **templates_openapi.PATHS,
            "/api/sessions/": {
                "get": {
                    "summary": "The live sessions this browser started (the landing page's list to resume or end)",
                    "description": "The active sessions whose keys the request's session cookies "
                    "(pg_<session id hex>, set by each start) hold, newest first; at most 32 cookies are "
                    "looked at. Never a listing by address.",
                    "responses": {
                        "200": {
                            "description": "The sessions, each as GET /api/sessions/{session_id}/ shows it.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["sessions"],
                                        "properties": {
                                            "sessions": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Session"},
                                            }
                                        },
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "summary": "Start a session",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "image": {"type": "string", "default": "busybox"},
                                        "lab": {
                                            "type": "string",
                                            "description": "Start this lab (its image unless image is given).",
                                        },
                                        "language": {
                                            "type": "string",
                                            "description": "The lab's language (en if it has it).",
                                        },
                                        "template": templates_openapi.START_FIELD,
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json("Session", "Started; the reply carries the key, also set as a cookie."),
                        "400": _error_response("Bad body or unknown image (the reply lists the images)."),
                        "404": _error_response(
                            "Unknown lab, language or template (unknown_lab, unknown_language, unknown_template)."
                        ),
                        "409": _error_response("The template has more nodes than a session may (too_many_nodes)."),
                        "403": _error_response("Sent from another site's page."),
                        "429": _error_response(
                            "This address has its most sessions running, or started its most within a minute.",
                            retry_after=True,
                        ),
                        "503": _error_response("Out of capacity or sandbox host unavailable.", retry_after=True),
                    },
                },
            },
            "/api/sessions/{session_id}/": {
                "parameters": [session_id],
                "get": {
                    "summary": "Inspect a session",
                    "security": KEYED,
                    "responses": {
                        "200": _json("Session", "The session."),
                        "403": _error_response("Wrong or missing key."),
                        "404": _error_response("Unknown session."),
                    },
                },
                "delete": {
                    "summary": "End a session (repeating it is harmless)",
                    "security": KEYED,
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
                    "security": KEYED,
                    "requestBody": EMPTY_BODY,
                    "responses": {
                        "200": _json("Session", "Extended; the reply carries the new expires_at."),
                        "400": _error_response("A body that is not an empty JSON object."),
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session."),
                        "409": _error_response(
                            "The session has ended (error 'session_ended') or already runs "
                            "until its longest lifetime (error 'longest_lifetime')."
                        ),
                    },
                },
            },
            "/api/sessions/{session_id}/hand/": {
                "parameters": [session_id],
                "post": {
                    "summary": "Raise a workshop learner's hand (again: update its sentence, keeping its place)",
                    "security": KEYED,
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"sentence": {"type": "string", "maxLength": 200}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": 'Raised: {"hand": {"raised_at", "sentence"}}.'},
                        "400": _error_response("A bad body, or a sentence that is not text of at most 200 characters."),
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session, or a session of no workshop (not_in_workshop)."),
                        "409": _error_response("The session has ended (session_ended)."),
                    },
                },
                "delete": {
                    "summary": "Lower a workshop learner's hand (repeating it is harmless)",
                    "security": KEYED,
                    "responses": {
                        "204": {"description": "Lowered, or none was raised."},
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session, or a session of no workshop (not_in_workshop)."),
                    },
                },
            },
            **_node_paths(session_id, instance_name),
            **_file_paths(session_id, instance_name),
            **ports_openapi.paths(session_id, instance_name),
            "/api/sessions/{session_id}/instances/{name}/terminals/": {
                "parameters": [session_id, instance_name],
                "get": {
                    "summary": "List the instance's open terminals (the page's tabs), terminal 0 first",
                    "security": KEYED,
                    "responses": {
                        "200": {
                            "description": "Open terminals.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "terminals": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Terminal"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "403": _error_response("Wrong or missing key."),
                        "404": _error_response("Unknown session or instance."),
                        "409": _error_response("The session has ended, or the sandbox is not running yet."),
                        "503": _error_response("Sandbox host unavailable.", retry_after=True),
                    },
                },
                "post": {
                    "summary": "Open another terminal: a new login shell in the same sandbox",
                    "security": KEYED,
                    "requestBody": EMPTY_BODY,
                    "responses": {
                        "201": _json("Terminal", "Opened; connect to its websocket path."),
                        "400": _error_response("A body that is not empty or {}."),
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session or instance."),
                        "409": _error_response(
                            "The session has ended ('session_ended'), the sandbox is not "
                            "running ('unknown_sandbox', 'sandbox_exited'), or it has its most "
                            "terminals open ('too_many_terminals', PLAYGROUND_MAX_TERMINALS)."
                        ),
                        "503": _error_response("Sandbox host unavailable.", retry_after=True),
                    },
                },
            },
            "/api/sessions/{session_id}/instances/{name}/terminals/{number}/": {
                "parameters": [
                    session_id,
                    instance_name,
                    {"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                ],
                "delete": {
                    "summary": "Close a terminal: its shell and what it started end (repeating it is harmless)",
                    "security": KEYED,
                    "responses": {
                        "204": {"description": "Closed, or already closed."},
                        "403": _error_response("Wrong or missing key, or sent from another site's page."),
                        "404": _error_response("Unknown session, instance or terminal number."),
                        "409": _error_response(
                            "Terminal 0, the first shell, ends only with the session ('first_terminal')."
                        ),
                    },
                },
            },
            "/api/images/": {
                "get": {
                    "summary": "List the images a session can start",
                    "responses": {
                        "200": {
                            "description": "Images.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "images": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["name", "default", "ready"],
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "default": {"type": "boolean"},
                                                        "ready": {
                                                            "type": "boolean",
                                                            "description": "false: built on first use",
                                                        },
                                                        "tag": {"type": "string"},
                                                        "digest": {"type": "string"},
                                                        "size": {
                                                            "type": "integer",
                                                            "description": "bytes of its layers",
                                                        },
                                                        "layers": {"type": "integer"},
                                                        "created": {"type": "string"},
                                                        "source": {"type": "string"},
                                                        "limits": {
                                                            "type": "object",
                                                            "description": "quotas of its sandboxes",
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "503": _error_response("Sandbox host unavailable.", retry_after=True),
                    },
                },
            },
            "/api/schema/": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
        },
    }
