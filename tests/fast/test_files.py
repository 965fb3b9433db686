"""Files in and out of a node through the API (``.../instances/<name>/files/``) against a fake
agent: what reaches the agent, the answers, the limit, and every refusal with a sentence."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django import Settings

from playground.config import load
from playground.sandboxes import filesapi
from playground.sandboxes.filesapi import size_in_words
from sandbox.wire.envparse import ConfigError
from sandbox.wire.protocol import AgentError
from tests.fakeagent import FakeAgent, FakeSandbox
from tests.fast import test_nodes as nodes
from tests.fast.test_api import assert_refused, configure

pytestmark = pytest.mark.django_db


class Visitor(nodes.Visitor):
    """A started session's node1 and its key, with the requests of the files API."""

    def url(self, query: str, node: str = "node1") -> str:
        return f"/api/sessions/{self.id}/instances/{node}/files/?{query}"

    def put(self, query: str, body: bytes, **headers: str) -> HttpResponse:
        return self.client.put(
            self.url(query), data=body, content_type="application/octet-stream", headers={**self.auth, **headers}
        )

    def get(self, query: str, node: str = "node1") -> HttpResponse:
        return self.client.get(self.url(query, node), headers=self.auth)


@pytest.fixture
def visitor(client: Client, agent: FakeAgent) -> Visitor:
    return Visitor(client)


def sandbox(agent: FakeAgent) -> FakeSandbox:
    (only,) = agent.sandboxes.values()
    return only


def file_requests(agent: FakeAgent) -> list[dict[str, Any]]:
    return [r for r in agent.requests if r.get("op") in ("put_file", "get_file")]


def test_an_upload_goes_to_the_agent_by_descriptor_and_answers_its_path_and_size(
    visitor: Visitor, agent: FakeAgent
) -> None:
    response = visitor.put("path=/tmp/a.txt", b"hello")
    assert response.status_code == 201, response.content
    assert response.json() == {"path": "/tmp/a.txt", "size": 5}
    assert sandbox(agent).files["/tmp/a.txt"] == b"hello"
    (request,) = file_requests(agent)
    assert request == {"op": "put_file", "sandbox": sandbox(agent).sandbox_id, "path": "/tmp/a.txt", "size": 5}


def test_a_relative_upload_names_the_terminal_whose_directory_it_goes_to(visitor: Visitor, agent: FakeAgent) -> None:
    response = visitor.put("path=notes.md&terminal=2", b"# notes\n")
    assert response.status_code == 201, response.content
    assert file_requests(agent)[0]["terminal"] == 2
    assert file_requests(agent)[0]["path"] == "notes.md"


def test_a_download_answers_the_bytes_as_an_attachment(visitor: Visitor, agent: FakeAgent) -> None:
    sandbox(agent).files["/root/report.csv"] = b"a,b\n1,2\n"
    response = visitor.get("path=/root/report.csv")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"a,b\n1,2\n"  # type: ignore[attr-defined]
    assert response["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert response["Content-Type"] == "application/octet-stream"
    assert file_requests(agent)[0]["limit"] == 50 * 1024 * 1024


def test_an_upload_announced_over_the_limit_is_refused_before_the_agent_is_asked(
    visitor: Visitor, agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, upload_limit=1024 * 1024)
    body = assert_refused(visitor.put("path=big", b"\0" * (3 * 1024 * 1024 // 2)), 413, "too_large")
    assert body["message"] == "The file is 1.5 MB; uploads are limited to 1 MB."
    assert body["limit"] == 1024 * 1024
    assert file_requests(agent) == []


def test_a_body_longer_than_announced_is_refused_once_it_passes_the_limit(
    visitor: Visitor, agent: FakeAgent, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(settings, upload_limit=1024)
    monkeypatch.setattr(filesapi, "_content_length", lambda request: None)  # as a chunked body comes
    body = assert_refused(visitor.put("path=big", b"x" * 5000), 413, "too_large")
    assert body["message"] == "The file is larger than 1 KB, the most an upload may be."
    assert file_requests(agent) == []


def test_an_upload_of_exactly_the_limit_is_accepted(visitor: Visitor, agent: FakeAgent, settings: Settings) -> None:
    configure(settings, upload_limit=1024)
    assert visitor.put("path=exact", b"x" * 1024).status_code == 201


def test_an_upload_without_a_body_is_refused_with_no_file(visitor: Visitor, agent: FakeAgent) -> None:
    assert_refused(visitor.put("path=/root/x", b""), 400, "no_file")
    assert file_requests(agent) == []


def test_a_full_disk_is_a_507_that_says_nothing_was_written(visitor: Visitor, agent: FakeAgent) -> None:
    sandbox(agent).disk_free = 10
    body = assert_refused(visitor.put("path=/root/x", b"x" * 100), 507, "disk_full")
    assert "disk of node1 is full" in body["message"]
    assert "/root/x" not in sandbox(agent).files


def test_directories_missing_files_and_large_files_are_refused_with_a_sentence(
    visitor: Visitor, agent: FakeAgent, settings: Settings
) -> None:
    assert_refused(visitor.get("path=/etc"), 400, "is_directory")
    assert_refused(visitor.put("path=/tmp", b"x"), 400, "is_directory")
    missing = assert_refused(visitor.get("path=/root/none"), 404, "no_such_file")
    assert missing["message"] == "There is no file /root/none in node1."
    configure(settings, upload_limit=1024)
    sandbox(agent).files["/root/big"] = b"x" * 2048
    assert "1 KB" in assert_refused(visitor.get("path=/root/big"), 413, "too_large")["message"]


@pytest.mark.parametrize("query", ["", "path=", "path=a%00b", "path=a%0Ab", "path=" + "a" * 4097])
def test_a_missing_or_impossible_path_is_a_400_bad_path(visitor: Visitor, agent: FakeAgent, query: str) -> None:
    assert_refused(visitor.get(query), 400, "bad_path")
    assert file_requests(agent) == []


@pytest.mark.parametrize("terminal", ["x", "-1", "1.5", "\u00b2", str(2**31)])
def test_a_terminal_that_is_not_a_number_is_a_400(visitor: Visitor, agent: FakeAgent, terminal: str) -> None:
    assert_refused(visitor.put(f"path=a&terminal={terminal}", b"x"), 400, "bad_terminal")


def test_an_unknown_node_the_wrong_key_and_another_site_are_refused(client: Client, agent: FakeAgent) -> None:
    visitor = Visitor(client)
    assert_refused(visitor.get("path=/etc/hostname", node="node7"), 404, "unknown_instance")
    wrong = client.get(visitor.url("path=/etc/hostname"), headers={"Authorization": "Session nope"})
    assert_refused(wrong, 403, "forbidden")
    assert_refused(visitor.put("path=a", b"x", Origin="https://elsewhere.example"), 403, "cross_site")
    assert file_requests(agent) == []


def test_other_methods_are_refused_with_405(visitor: Visitor) -> None:
    response = visitor.client.post(visitor.url("path=a"), data=b"x", content_type="text/plain", headers=visitor.auth)
    assert_refused(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, PUT"


def test_an_agent_that_is_down_gives_503_not_500(visitor: Visitor, agent: FakeAgent) -> None:
    agent._call(agent._close())
    agent.socket_path.unlink()
    assert_refused(visitor.put("path=a", b"x"), 503, "agent_unavailable")
    assert_refused(visitor.get("path=a"), 503, "agent_unavailable")


def test_a_host_still_busy_after_the_wait_is_a_503_host_busy_with_retry_after_not_the_nodes_busy(
    visitor: Visitor, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def host_busy(*_: Any) -> None:
        raise AgentError("host_busy", "this host has been moving 8 files at once for 30 s; try again in a moment")

    monkeypatch.setattr(agent, "_file", host_busy)
    for response in (
        visitor.put("path=/root/x", b"x"),
        visitor.get("path=/root/x"),
        visitor.client.get(f"/api/sessions/{visitor.id}/home.tar", headers=visitor.auth),
    ):
        body = assert_refused(response, 503, "host_busy")
        assert response["Retry-After"] == "5"
        assert "moving many files for other sessions" in body["message"]
        assert "node1" not in body["message"], "not the node's own bound"
    korean = visitor.client.get(visitor.url("path=/root/x"), headers={**visitor.auth, "Accept-Language": "ko"})
    assert korean.status_code == 503 and korean.json()["error"] == "host_busy"
    assert korean.json()["message"].startswith("샌드박스 호스트가 지금")


def test_sizes_are_said_in_words() -> None:
    assert size_in_words(512) == "512 bytes"
    assert size_in_words(12 * 1024) == "12 KB"
    assert size_in_words(50 * 1024 * 1024) == "50 MB"
    assert size_in_words(60 * 1024 * 1024) == "60 MB"
    assert size_in_words(3 * 1024**3 // 2) == "1.5 GB"


def test_the_upload_limit_is_50_mb_and_strictly_parsed() -> None:
    assert load({}).upload_limit == 50 * 1024 * 1024
    assert load({"PLAYGROUND_UPLOAD_LIMIT": "10M"}).upload_limit == 10 * 1024 * 1024
    assert load({"PLAYGROUND_UPLOAD_LIMIT": "10 MB"}).upload_limit == 10 * 1024 * 1024
    for bad in ("lots", "-5M", "0", "2G"):
        with pytest.raises(ConfigError, match="PLAYGROUND_UPLOAD_LIMIT"):
            load({"PLAYGROUND_UPLOAD_LIMIT": bad})


def test_the_openapi_document_describes_the_files_path(client: Client) -> None:
    paths = client.get("/api/schema/").json()["paths"]
    files = paths["/api/sessions/{session_id}/instances/{name}/files/"]
    assert {"put", "get"} <= set(files)
    assert {"201", "400", "404", "413", "507"} <= set(files["put"]["responses"])
    assert "application/octet-stream" in files["get"]["responses"]["200"]["content"]
    assert {p["name"] for p in files["parameters"]} == {"session_id", "name", "path", "terminal"}


async def test_an_upload_announced_over_the_limit_is_refused_before_django_reads_its_body() -> None:
    called: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    async def django(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append(scope)

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = filesapi.UploadLimit(django)
    path = "/api/sessions/abc/instances/node1/files/"
    big = str(60 * 1024 * 1024).encode()
    await guard({"type": "http", "method": "PUT", "path": path, "headers": [(b"content-length", big)]}, receive, send)
    assert called == []
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {
        "error": "too_large",
        "message": "The file is 60 MB; uploads are limited to 50 MB.",
        "limit": 50 * 1024 * 1024,
    }
    small = [(b"content-length", b"1024")]
    for scope in (
        {"type": "http", "method": "PUT", "path": path, "headers": small},
        {"type": "http", "method": "GET", "path": path, "headers": [(b"content-length", big)]},
        {"type": "http", "method": "PUT", "path": "/api/sessions/", "headers": [(b"content-length", big)]},
        {"type": "http", "method": "PUT", "path": path, "headers": []},
    ):
        await guard(scope, receive, send)
    assert len(called) == 4  # everything else goes on to Django


def test_a_web_server_without_room_for_the_upload_says_so_with_503(
    visitor: Visitor, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(filesapi, "_spool", no_room)
    assert_refused(visitor.put("path=a", b"x"), 503, "no_room")
    assert file_requests(agent) == []
