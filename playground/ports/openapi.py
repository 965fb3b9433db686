"""The port API's part of the OpenAPI document (/api/schema/): the Port schema and its paths."""

from __future__ import annotations

from typing import Any

PORT = {
    "type": "object",
    "required": ["port", "listening", "shared", "https", "url", "path_url", "open_url"],
    "properties": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "listening": {"type": "boolean", "description": "Whether the sandbox host sees it listening in the node."},
        "shared": {"type": "boolean", "description": "Anyone with the link may open it (else its owner alone)."},
        "https": {"type": "boolean", "description": "The port proxy speaks TLS to the node (certificate unchecked)."},
        "url": {"type": "string", "description": "The host-form link: <port>-<node>-<short id>.<ports domain>."},
        "path_url": {"type": "string", "description": "The path-form link: /ports/<short id>/<node>/<port>/."},
        "open_url": {
            "type": "string",
            "description": "The owner's way in (GET on this site): a redirect into the host-form link "
            "with a one-minute token; ?form=path into the path form with the owner's pass.",
        },
    },
}

SCHEMAS = {"Port": PORT}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def paths(session_id: dict[str, Any], instance_name: dict[str, Any]) -> dict[str, Any]:
    """The port API's paths (docs/ports.md)."""
    port = {"name": "port", "in": "path", "required": True, "schema": {"type": "integer"}, "description": "1-65535."}
    keyed: list[dict[str, list[str]]] = [{"sessionKey": []}, {"sessionCookie": []}]
    port_json = {
        "description": "The port JSON.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Port"}}},
    }
    refusals = {
        "400": _error("Not a port number 1-65535 ('bad_port')."),
        "403": _error("Wrong or missing key."),
        "404": _error("Unknown session, or no live node of that name ('unknown_instance')."),
    }
    return {
        "/api/sessions/{session_id}/instances/{name}/ports/{port}/": {
            "parameters": [session_id, instance_name, port],
            "get": {
                "summary": "A node's port (any port, listening or not) with its links and options",
                "security": keyed,
                "responses": {"200": port_json, **refusals},
            },
            "patch": {
                "summary": "Share a port (anyone with the link may open it) or reach it over TLS",
                "security": keyed,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"shared": {"type": "boolean"}, "https": {"type": "boolean"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": port_json,
                    **refusals,
                    "400": _error(
                        "Not a port number ('bad_port'), or a bad body (bad_json, unknown_field, bad_option)."
                    ),
                    "403": _error("Wrong or missing key, or sent from another site's page."),
                    "409": _error("The session has ended ('session_ended')."),
                },
            },
        },
        "/api/sessions/{session_id}/instances/{name}/ports/{port}/open/": {
            "parameters": [session_id, instance_name, port],
            "get": {
                "summary": "The owner's way into a port link (a browser navigation, with the session's cookie)",
                "security": keyed,
                "parameters": [
                    {
                        "name": "form",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["path"]},
                        "description": "'path' for the path form; the host form by default.",
                    }
                ],
                "responses": {"302": {"description": "To the link, with the owner's token or pass."}, **refusals},
            },
        },
    }
