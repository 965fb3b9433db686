"""Port links against a real stack: busybox httpd in a node, reached through the stack's port proxy
(PLAYGROUND_PORTS_PORT) by both URL forms, with the owner's cookie only, then shared, then ended."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets

from tests.stack import Stack, Terminal
from tests.waiting import eventually


def fetch(
    stack: Stack, path: str, host: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET to the stack's port proxy with ``Host: host``; status, headers (lower-case), body."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports_port, timeout=20)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def upgrade(stack: Stack, path: str, host: str, cookie: str = "") -> int:
    """The status a websocket upgrade request gets from the port proxy."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    if cookie:
        headers["Cookie"] = cookie
    return fetch(stack, path, host, headers)[0]


def port_json(stack: Stack, session: dict[str, Any], port: int, node: str = "node1") -> dict[str, Any]:
    response = stack.request(
        "GET",
        f"/api/sessions/{session['id']}/instances/{node}/ports/{port}/",
        headers={"Authorization": f"Session {session['key']}"},
    )
    assert response.status == 200, response.body
    return dict(response.json())


async def test_a_node_port_opens_for_its_owner_in_both_forms_then_for_anyone_once_shared_and_not_after_the_end(
    stack: Stack,
) -> None:
    session = stack.start_session()
    owner_cookie = f"pg_{session['id'].replace('-', '')}={session['key']}"
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ")
    await terminal.run("mkdir -p /www && echo hello-from-the-node > /www/index.html && httpd -p 8080 -h /www")
    eventually(lambda: port_json(stack, session, 8080)["listening"], "the agent sees port 8080 listening", 10)
    links = port_json(stack, session, 8080)
    path = urlsplit(links["path_url"]).path
    assert links["path_url"] == f"http://127.0.0.1:{stack.ports_port}{path}"

    # Path form: the session's own cookie opens it (by a redirect to the URL with the owner's
    # pass, which what the page loads keeps); no cookie, or another session's, does not.
    status, headers, _ = fetch(stack, path, headers={"Cookie": owner_cookie})
    assert status == 302 and headers["location"].startswith(path.rstrip("/") + "~")
    status, headers, body = fetch(stack, headers["location"])
    assert (status, body) == (200, b"hello-from-the-node\n")
    assert headers["content-security-policy"].startswith("sandbox")
    other = stack.start_session()
    other_cookie = f"pg_{other['id'].replace('-', '')}={other['key']}"
    assert fetch(stack, path)[0] == 403
    assert fetch(stack, path, headers={"Cookie": other_cookie})[0] == 403
    assert upgrade(stack, path, "127.0.0.1") == 403
    assert upgrade(stack, path, "127.0.0.1", other_cookie) == 403

    # Host form: open_url hands the owner a cookie for that host alone.
    location = urlsplit(links["url"])
    host = location.netloc
    status, headers, _ = fetch(stack, location.path, host)
    assert status == 403
    handoff = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    handoff.request("GET", links["open_url"], headers={"Authorization": f"Session {session['key']}"})
    redirect = handoff.getresponse()
    assert redirect.status == 302
    target = urlsplit(redirect.getheader("Location") or "")
    handoff.close()
    status, headers, _ = fetch(stack, f"{target.path}?{target.query}", host)
    assert status == 302 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";")[0]
    status, _, body = fetch(stack, "/", host, {"Cookie": cookie})
    assert (status, body) == (200, b"hello-from-the-node\n")
    assert upgrade(stack, "/", host) == 403

    # Shared: anyone with the link.
    shared = stack.request(
        "PATCH",
        f"/api/sessions/{session['id']}/instances/node1/ports/8080/",
        {"shared": True},
        headers={"Authorization": f"Session {session['key']}"},
    )
    assert shared.status == 200 and shared.json()["shared"] is True
    # Each of the proxy's processes learns of the share by itself: both forms are awaited.
    eventually(lambda: fetch(stack, path)[0] == 200, "the shared link opens without a cookie", 5)
    eventually(
        lambda: fetch(stack, "/", host)[2] == b"hello-from-the-node\n", "the shared host form opens without a cookie", 5
    )

    # Ended: 410 with a sentence, for everyone.
    await terminal.close()
    stack.end_session(session)
    eventually(lambda: fetch(stack, path)[0] == 410, "the ended session's link answers 410", 10)
    # Each of the proxy's processes keeps what it read of the session for about a second, so one
    # answer may still be another process's (the waiting page: the node is gone).
    eventually(
        lambda: fetch(stack, "/", host, {"Cookie": cookie}),
        "the host form answers 410 with a sentence",
        5,
        until=lambda answer: answer[0] == 410 and b"This session has ended" in answer[2],
    )
    stack.end_session(other)


async def test_a_port_where_nothing_listens_gets_the_waiting_page(stack: Stack) -> None:
    session = stack.start_session()
    owner_cookie = f"pg_{session['id'].replace('-', '')}={session['key']}"
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ")
    path = urlsplit(port_json(stack, session, 9999)["path_url"]).path
    # The prompt can come before the worker records the node as running (until then the link
    # answers "still starting" without a redirect): the owner's pass comes once it is.
    redirect = eventually(
        lambda: fetch(stack, path, headers={"Cookie": owner_cookie}),
        "the path form redirects the owner to the owner's pass",
        10,
        until=lambda answer: answer[0] == 302,
    )
    status, headers, body = fetch(stack, redirect[1]["location"])
    assert status == 503 and headers["retry-after"] == "2"
    assert b"Nothing listens on port 9999 of node1 yet" in body
    assert f"/s/{session['id']}/".encode() in body  # the link back to the session
    await terminal.close()
    stack.end_session(session)


async def test_a_websocket_echo_server_in_a_docker_node_answers_through_its_port_link(docker_image: Stack) -> None:
    session = docker_image.start_session(image="docker")
    owner_cookie = f"pg_{session['id'].replace('-', '')}={session['key']}"
    terminal = await Terminal.open(docker_image.terminal_url(session))
    await terminal.expect("# ", timeout=60)
    await terminal.run("(websocketd --port=9000 cat >/dev/null 2>&1 &)")
    eventually(lambda: port_json(docker_image, session, 9000)["listening"], "websocketd listens on 9000", 10)
    path = urlsplit(port_json(docker_image, session, 9000)["path_url"]).path
    url = f"ws://127.0.0.1:{docker_image.ports_port}{path}"
    async with websockets.connect(url, additional_headers={"Cookie": owner_cookie}) as websocket:
        for n in range(20):
            await websocket.send(f"echo {n}")
            assert await websocket.recv() == f"echo {n}"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403
    await terminal.close()
    docker_image.end_session(session)
