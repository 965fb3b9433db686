"""A session's home directory as a tar (``GET /api/sessions/<id>/home.tar``) against a fake agent
whose ``get_tree`` packs its files: the tar, the limit, and every refusal with a sentence."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django import Settings

from tests.fakeagent import FakeAgent
from tests.fast.test_api import assert_refused, configure
from tests.fast.test_files import Visitor, sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def visitor(client: Client, agent: FakeAgent) -> Visitor:
    return Visitor(client)


def home(visitor: Visitor, query: str = "", **headers: str) -> HttpResponse:
    return visitor.client.get(f"/api/sessions/{visitor.id}/home.tar{query}", headers=headers or visitor.auth)


def test_home_tar_is_the_nodes_root_directory_as_a_tar_attachment(visitor: Visitor, agent: FakeAgent) -> None:
    files = sandbox(agent).files
    files.update({"/root/notes.txt": b"hello\n", "/root/app/bin.dat": bytes(range(256)), "/tmp/other": b"no"})
    response = home(visitor)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-tar"
    assert response["Content-Disposition"] == 'attachment; filename="node1-home.tar"'
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:  # type: ignore[attr-defined]
        assert sorted(tar.getnames()) == ["./app/bin.dat", "./notes.txt"]
        packed = tar.extractfile("./app/bin.dat")
        assert packed is not None and packed.read() == bytes(range(256))
    (request,) = [r for r in agent.requests if r.get("op") == "get_tree"]
    assert request["path"] == "/root" and request["sandbox"] == sandbox(agent).sandbox_id


def test_a_home_over_the_limit_is_refused_with_413_naming_the_limit(
    visitor: Visitor, agent: FakeAgent, settings: Settings
) -> None:
    configure(settings, upload_limit=4096)
    sandbox(agent).files["/root/big.iso"] = b"x" * 10000
    body = assert_refused(home(visitor), 413, "home_too_large")
    assert "more than 4 KB" in body["message"], body
    assert body["limit"] == 4096 and body["limit_in_words"] == "4 KB"


def test_home_tar_needs_the_sessions_key(visitor: Visitor) -> None:
    assert_refused(home(visitor, Authorization="Session not-the-key"), 403, "forbidden")
    response = visitor.client.get("/api/sessions/00000000-0000-0000-0000-000000000000/home.tar")
    assert_refused(response, 404, "unknown_session")


def test_home_tar_of_a_node_the_session_does_not_have_is_a_404(visitor: Visitor) -> None:
    assert_refused(home(visitor, "?node=node9"), 404, "unknown_instance")


def test_home_tar_answers_only_get(visitor: Visitor) -> None:
    response = visitor.client.post(f"/api/sessions/{visitor.id}/home.tar", headers=visitor.auth)
    assert_refused(response, 405, "method_not_allowed")


def test_home_tar_of_an_ended_session_is_refused_with_409(visitor: Visitor) -> None:
    assert visitor.client.delete(f"/api/sessions/{visitor.id}/", headers=visitor.auth).status_code in (200, 204)
    assert_refused(home(visitor), 409, "session_ended")


def test_the_session_page_offers_the_download_in_the_warning_banner_and_the_node_tools(visitor: Visitor) -> None:
    page = visitor.client.get(f"/s/{visitor.id}/").content.decode()
    assert page.count("data-home-download") == 2, "the warning's banner and the node tools each have the link"
    assert "Download your work" in page
