"""The HTTP API against a real stack: the contract of docs/architecture.md, and clear errors for bad input."""

from __future__ import annotations

import uuid

import pytest

from playground.labs import openapi as lab_openapi
from tests.stack import Stack


def auth(session: dict) -> dict[str, str]:
    return {"Authorization": f"Session {session['key']}"}


def test_post_starts_a_session_with_key_expiry_and_terminal(stack: Stack) -> None:
    response = stack.request("POST", "/api/sessions/", {"image": "busybox"})
    assert response.status == 201, response.body
    session = response.json()
    assert set(session) >= {"id", "key", "expires_at", "instances"}
    assert session["instances"][0]["name"] == "node1"
    assert session["instances"][0]["terminal"] == f"/ws/sessions/{uuid.UUID(session['id']).hex}/node1/"
    assert f"pg_{uuid.UUID(session['id']).hex}={session['key']}" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    stack.end_session(session)


def test_post_without_a_body_uses_the_default_image(stack: Stack) -> None:
    response = stack.request("POST", "/api/sessions/", raw=b"")
    assert response.status == 201, response.body
    assert response.json()["image"] == "busybox"
    stack.end_session(response.json())


def test_get_shows_the_session_to_its_key_holder_only(stack: Stack) -> None:
    session = stack.start_session()
    mine = stack.request("GET", f"/api/sessions/{session['id']}/", headers=auth(session))
    assert mine.status == 200, mine.body
    assert mine.json()["id"] == session["id"]
    assert "key" not in mine.json()
    cookie = stack.request(
        "GET",
        f"/api/sessions/{session['id']}/",
        headers={"Cookie": f"pg_{uuid.UUID(session['id']).hex}={session['key']}"},
    )
    assert cookie.status == 200, cookie.body
    for headers in ({}, {"Authorization": "Session wrong"}, {"Authorization": session["key"]}):
        denied = stack.request("GET", f"/api/sessions/{session['id']}/", headers=headers)
        assert denied.status == 403, denied.body
        assert denied.json()["error"] == "forbidden"
        assert "key" in denied.json()["message"]
    stack.end_session(session)


def test_another_sessions_key_does_not_open_this_one(stack: Stack) -> None:
    alice, bob = stack.start_session(), stack.start_session()
    response = stack.request("GET", f"/api/sessions/{alice['id']}/", headers=auth(bob))
    assert response.status == 403, response.body
    stack.end_session(alice)
    stack.end_session(bob)


def test_delete_ends_the_session_and_repeating_it_is_harmless(stack: Stack) -> None:
    session = stack.start_session()
    for _ in range(3):
        assert stack.request("DELETE", f"/api/sessions/{session['id']}/", headers=auth(session)).status == 204
    shown = stack.request("GET", f"/api/sessions/{session['id']}/", headers=auth(session)).json()
    assert shown["state"] in ("ending", "ended")
    assert shown["ended_reason"] == "deleted"


@pytest.mark.parametrize("path", ["/api/sessions/not-a-uuid/", f"/api/sessions/{uuid.uuid4()}/"])
def test_unknown_sessions_are_404_json(stack: Stack, path: str) -> None:
    response = stack.request("GET", path)
    assert response.status == 404, response.body
    assert response.json()["error"] == "unknown_session"


def test_unknown_image_is_400_with_the_list_of_images(stack: Stack) -> None:
    response = stack.request("POST", "/api/sessions/", {"image": "ubuntu:latest"})
    assert response.status == 400, response.body
    body = response.json()
    assert body["error"] == "unknown_image"
    # Every image of the stack (the security tests build docker in it too), busybox among them.
    assert body["images"] == [i["name"] for i in stack.request("GET", "/api/images/").json()["images"]]
    assert "busybox" in body["images"] and "busybox" in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[1, 2]",
        b'"busybox"',
        b'{"image": 7}',
        b'{"imag": "busybox"}',
        b"\xff\xfe",
        b'{"image": null}',
        b"null",
        b"1e999",
    ],
)
def test_malformed_bodies_get_400_with_a_sentence(stack: Stack, raw: bytes) -> None:
    response = stack.request("POST", "/api/sessions/", raw=raw)
    assert response.status == 400, response.body
    assert response.json()["message"].endswith(".")


def test_oversized_bodies_are_refused(stack: Stack) -> None:
    response = stack.request("POST", "/api/sessions/", raw=b'{"image": "' + b"a" * 20000 + b'"}')
    assert response.status == 413, response.body


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", "/api/sessions/"),  # GET lists the visitor's sessions, POST starts one
        ("PUT", "/api/sessions/"),
        ("PATCH", f"/api/sessions/{uuid.uuid4()}/"),
        ("POST", "/api/images/"),
    ],
)
def test_wrong_methods_are_405_json(stack: Stack, method: str, path: str) -> None:
    response = stack.request(method, path, raw=b"{}")
    assert response.status == 405, response.body
    assert response.json()["error"] == "method_not_allowed"
    assert "Allow" in response.headers


def test_a_page_from_another_site_cannot_start_or_end_sessions(stack: Stack) -> None:
    evil = {"Origin": "http://evil.example"}
    assert stack.request("POST", "/api/sessions/", {}, headers=evil).status == 403
    session = stack.start_session()
    response = stack.request("DELETE", f"/api/sessions/{session['id']}/", headers={**auth(session), **evil})
    assert response.status == 403, response.body
    stack.end_session(session)


def test_images_are_listed(stack: Stack) -> None:
    response = stack.request("GET", "/api/images/")
    assert response.status == 200, response.body
    busybox = next(i for i in response.json()["images"] if i["name"] == "busybox")
    assert busybox["default"]
    assert busybox["ready"]
    assert busybox["layers"] == 1
    assert busybox["size"] > 1_000_000
    assert busybox["limits"]["disk_bytes"] == 96 * 1024**2  # the stack's PLAYGROUND_IMAGE_QUOTAS


def test_the_openapi_document_describes_every_route(stack: Stack) -> None:
    document = stack.request("GET", "/api/schema/").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/sessions/",
        "/api/sessions/{session_id}/",
        "/api/sessions/{session_id}/extend/",
        "/api/images/",
        "/api/schema/",
        "/api/sessions/{session_id}/instances/",
        "/api/sessions/{session_id}/instances/{name}/",
        "/api/sessions/{session_id}/instances/{name}/terminals/",
        "/api/sessions/{session_id}/instances/{name}/terminals/{number}/",
        "/api/sessions/{session_id}/instances/{name}/ports/{port}/",
        "/api/sessions/{session_id}/instances/{name}/ports/{port}/open/",
        "/api/sessions/{session_id}/instances/{name}/files/",
        "/api/sessions/{session_id}/home.tar",
        "/api/sessions/{session_id}/hand/",
        "/api/templates/",
        *lab_openapi.paths({}),
    }
    assert {"201", "400", "429", "503"} <= set(document["paths"]["/api/sessions/"]["post"]["responses"])
    assert "200" in document["paths"]["/api/sessions/"]["get"]["responses"]  # the visitor's sessions
    assert {"200", "403", "404", "409"} <= set(
        document["paths"]["/api/sessions/{session_id}/extend/"]["post"]["responses"]
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing",
        "/api/sessions/%00/",
        "/api/sessions/" + "a" * 3000 + "/",
        "/admin/../../etc/passwd",
        "/s/not-a-session/",
    ],
)
def test_odd_paths_never_give_a_500(stack: Stack, path: str) -> None:
    assert stack.request("GET", path).status < 500
