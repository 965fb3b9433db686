"""The session registry's login in the session API and on the session page: its visitor sees the
address, the user (the session's namespace) and the password; the password is derived, never the
session's key; an ended session shows none; the page has the panel with its copy buttons."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from playground.registry import push
from playground.sandboxes.models import Session
from tests.fakeagent import FakeAgent
from tests.fast.test_api import session_of, start

pytestmark = pytest.mark.django_db


def test_the_sessions_visitor_gets_the_registry_address_user_and_password(client: Client, agent: FakeAgent) -> None:
    started = start(client)
    shown = session_of(client, started)
    registry = shown["registry"]
    short_id = Session.objects.get(pk=shown["id"]).short_id
    assert registry["address"] == f"registry:{settings.PLAYGROUND.registry_port}"
    assert registry["user"] == push.namespace_of(short_id) == registry["prefix"].split("/")[1]
    assert registry["password"] == push.password_for(settings.SECRET_KEY, Session.hash_key(started.json()["key"]))
    assert started.json()["key"] not in registry["password"]
    assert registry["quota_bytes"] == settings.PLAYGROUND.registry_push_quota


def test_an_ended_session_shows_no_registry_login(client: Client, agent: FakeAgent) -> None:
    started = start(client).json()
    auth = {"Authorization": f"Session {started['key']}"}
    assert client.delete(f"/api/sessions/{started['id']}/", headers=auth).status_code == 204
    assert "registry" not in client.get(f"/api/sessions/{started['id']}/", headers=auth).json()


def test_another_visitor_gets_no_registry_login(client: Client, agent: FakeAgent) -> None:
    started = start(client).json()
    response = Client().get(f"/api/sessions/{started['id']}/")
    assert response.status_code == 403 and b"password" not in response.content


def test_the_session_page_has_the_registry_panel_with_a_copy_button_per_value(client: Client, agent: FakeAgent) -> None:
    started = start(client).json()
    page = client.get(f"/s/{started['id']}/").content.decode()
    assert 'id="registry-panel"' in page
    for name in ("address", "user", "password", "login"):
        assert f'id="registry-{name}"' in page and f'data-copy="{name}"' in page


def test_the_api_schema_describes_the_registry_login(client: Client) -> None:
    schema = client.get("/api/schema/").json()["components"]["schemas"]["Session"]["properties"]["registry"]
    assert set(schema["required"]) == {"address", "user", "password", "prefix", "quota_bytes"}
