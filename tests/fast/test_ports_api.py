"""A node's port in the API (playground.ports.api), its links (playground.ports.links), the proxy's
view of the database (playground.ports.access) and the port links' settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from pytest_django import Settings

from playground import config
from playground.ports import handoff
from playground.ports.access import Directory, load_session
from playground.sandboxes.models import Instance, Session
from tests.fakeagent import FakeAgent
from tests.fast.test_api import assert_refused
from tests.fast.test_nodes import Visitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def visitor(client: Client, agent: FakeAgent) -> Visitor:
    return Visitor(client)


def port_url(visitor: Visitor, port: object, name: str = "node1") -> str:
    return f"{visitor.url}{name}/ports/{port}/"


def patch(visitor: Visitor, port: object, body: str) -> object:
    return visitor.client.patch(
        port_url(visitor, port), data=body, content_type="application/json", headers=visitor.auth
    )


def test_any_port_can_be_asked_for_by_number_with_its_links(visitor: Visitor, agent: FakeAgent) -> None:
    node1 = visitor.instance("node1")
    agent.sandboxes[node1.sandbox_id].ports = [8080]
    short_id = Session.objects.get(pk=visitor.id).short_id
    listening = visitor.client.get(port_url(visitor, 8080), headers=visitor.auth).json()
    silent = visitor.client.get(port_url(visitor, 3000), headers=visitor.auth).json()
    assert listening == {
        "port": 8080,
        "listening": True,
        "shared": False,
        "https": False,
        "url": f"http://8080-node1-{short_id}.localhost:8001/",
        "path_url": f"http://testserver:8001/ports/{short_id}/node1/8080/",
        "open_url": f"/api/sessions/{Session.objects.get(pk=visitor.id).id.hex}/instances/node1/ports/8080/open/",
    }
    assert silent["port"] == 3000 and silent["listening"] is False


def test_links_behind_a_tls_proxy_name_its_scheme_and_leave_out_its_default_port(
    visitor: Visitor, settings: Settings
) -> None:
    settings.PLAYGROUND = replace(
        settings.PLAYGROUND, ports_domain="ports.example.net", ports_public_scheme="https", ports_public_port=443
    )
    body = visitor.client.get(port_url(visitor, 80), headers=visitor.auth).json()
    assert body["url"].startswith("https://80-node1-") and body["url"].endswith(".ports.example.net/")
    assert body["path_url"].startswith("https://testserver/ports/")


@pytest.mark.parametrize("port", ["0", "70000", "junk", "-1", "1e3"])
def test_a_bad_port_is_400_bad_port_with_a_sentence(visitor: Visitor, port: str) -> None:
    assert_refused(visitor.client.get(port_url(visitor, port), headers=visitor.auth), 400, "bad_port")
    assert_refused(patch(visitor, port, '{"shared": true}'), 400, "bad_port")  # type: ignore[arg-type]


def test_an_unknown_node_is_404_and_another_sessions_key_403(visitor: Visitor, client: Client) -> None:
    assert_refused(
        visitor.client.get(port_url(visitor, 80, name="node7"), headers=visitor.auth), 404, "unknown_instance"
    )
    other = Visitor(client)
    assert_refused(visitor.client.get(port_url(visitor, 80), headers=other.auth), 403, "forbidden")
    assert_refused(visitor.client.get(f"{port_url(visitor, 80)}open/", headers=other.auth), 403, "forbidden")


def test_patch_shares_a_port_and_keeps_only_options_that_differ_from_the_defaults(visitor: Visitor) -> None:
    shared = patch(visitor, 8080, '{"shared": true}')
    assert shared.status_code == 200 and shared.json()["shared"] is True  # type: ignore[attr-defined]
    patch(visitor, 443, '{"https": true}')
    assert visitor.instance("node1").port_options == {"8080": {"shared": True}, "443": {"https": True}}
    patch(visitor, 8080, '{"shared": false}')
    assert visitor.instance("node1").port_options == {"443": {"https": True}}


@pytest.mark.parametrize(
    ("body", "code"),
    [('{"shared": "yes"}', "bad_option"), ('{"public": true}', "unknown_field"), ("[", "bad_json")],
)
def test_a_bad_patch_is_400_with_a_sentence(visitor: Visitor, body: str, code: str) -> None:
    assert_refused(patch(visitor, 8080, body), 400, code)  # type: ignore[arg-type]


def test_patch_after_the_session_ended_is_409(visitor: Visitor) -> None:
    Session.objects.filter(pk=visitor.id).update(state=Session.State.ENDED)
    assert_refused(patch(visitor, 8080, '{"shared": true}'), 409, "session_ended")  # type: ignore[arg-type]


def test_open_redirects_the_owner_to_the_host_form_with_a_token_for_that_host_alone(visitor: Visitor) -> None:
    session = Session.objects.get(pk=visitor.id)
    response = visitor.client.get(f"{port_url(visitor, 8080)}open/", headers=visitor.auth, HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    host = f"8080-node1-{session.short_id}.localhost"
    assert (location.scheme, location.netloc, location.path) == ("http", f"{host}:8001", "/")
    [token] = parse_qs(location.query)["__playground_token"]
    assert handoff.check_token(token, host) == {"s": session.id.hex, "b": "http://127.0.0.1:8000"}
    assert handoff.check_token(token, f"8081-node1-{session.short_id}.localhost") is None
    path_form = visitor.client.get(f"{port_url(visitor, 8080)}open/?form=path", headers=visitor.auth)
    owner_pass = handoff.path_pass(session.id.hex, "node1", 8080)
    assert path_form["Location"] == f"http://testserver:8001/ports/{session.short_id}/node1/8080~{owner_pass}/"


def test_open_leads_a_visitor_from_another_machine_to_the_path_form_while_the_domain_is_localhost(
    visitor: Visitor, settings: Settings
) -> None:
    session = Session.objects.get(pk=visitor.id)
    settings.ALLOWED_HOSTS = ["*"]
    lan = visitor.client.get(f"{port_url(visitor, 80)}open/", headers=visitor.auth, HTTP_HOST="192.168.1.5:8000")
    assert lan["Location"].startswith(f"http://192.168.1.5:8001/ports/{session.short_id}/node1/80~")
    local = visitor.client.get(f"{port_url(visitor, 80)}open/", headers=visitor.auth, HTTP_HOST="localhost:8000")
    assert local["Location"].startswith(f"http://80-node1-{session.short_id}.localhost:8001/?__playground_token=")
    settings.PLAYGROUND = replace(settings.PLAYGROUND, ports_domain="ports.example.net")
    wildcard = visitor.client.get(f"{port_url(visitor, 80)}open/", headers=visitor.auth, HTTP_HOST="192.168.1.5:8000")
    assert wildcard["Location"].startswith(f"http://80-node1-{session.short_id}.ports.example.net:8001/?")


def test_open_with_the_sessions_cookie_works_and_without_any_key_is_403(visitor: Visitor, client: Client) -> None:
    client.cookies[f"pg_{visitor.id.replace('-', '')}"] = visitor.key
    assert client.get(f"{port_url(visitor, 8080)}open/").status_code == 302
    client.cookies.clear()
    assert_refused(client.get(f"{port_url(visitor, 8080)}open/"), 403, "forbidden")


def test_the_proxys_view_of_a_session_has_its_nodes_and_options(visitor: Visitor) -> None:
    session = Session.objects.get(pk=visitor.id)
    Instance.objects.filter(session=session).update(port_options={"80": {"shared": True}})
    info = load_session(session.short_id)
    assert info is not None and info.id == session.id and info.active
    assert info.owned_by(visitor.key) and not info.owned_by("another key") and not info.owned_by(None)
    assert info.nodes["node1"].port_options == {"80": {"shared": True}}
    assert load_session("0" * 20) is None


@pytest.mark.django_db(transaction=True)
async def test_the_directory_keeps_an_answer_about_a_second(client: Client, agent: FakeAgent) -> None:
    from asgiref.sync import sync_to_async

    visitor = await sync_to_async(Visitor)(client)
    session = await Session.objects.aget(pk=visitor.id)
    directory = Directory(seconds=0.3)
    assert (await directory.lookup(session.short_id)).active  # type: ignore[union-attr]
    await Session.objects.filter(pk=session.pk).aupdate(state=Session.State.ENDED)
    assert (await directory.lookup(session.short_id)).active  # type: ignore[union-attr]
    await asyncio.sleep(0.35)
    assert not (await directory.lookup(session.short_id)).active  # type: ignore[union-attr]


def test_the_openapi_document_describes_the_port_paths(client: Client) -> None:
    document = client.get("/api/schema/").json()
    port = document["paths"]["/api/sessions/{session_id}/instances/{name}/ports/{port}/"]
    assert {"get", "patch"} <= set(port)
    assert {"200", "400", "403", "404", "409"} <= set(port["patch"]["responses"])
    assert (
        "302" in document["paths"]["/api/sessions/{session_id}/instances/{name}/ports/{port}/open/"]["get"]["responses"]
    )
    assert set(document["components"]["schemas"]["Port"]["required"]) == {
        "port",
        "listening",
        "shared",
        "https",
        "url",
        "path_url",
        "open_url",
    }


def test_the_port_settings_are_parsed_strictly() -> None:
    loaded = config.load({})
    assert (loaded.ports_port, loaded.ports_domain, loaded.ports_public_scheme) == (8001, "localhost", "http")
    assert loaded.ports_public_port == 8001
    assert config.load({"PLAYGROUND_PORTS_PORT": "9001"}).ports_public_port == 9001
    assert 1 <= loaded.ports_workers <= 8
    for name, value in [
        ("PLAYGROUND_PORTS_PORT", "0"),
        ("PLAYGROUND_PORTS_DOMAIN", "https://ports.example.net"),
        ("PLAYGROUND_PORTS_DOMAIN", "Ports.Example.net"),
        ("PLAYGROUND_PORTS_DOMAIN", "ports..net"),
        ("PLAYGROUND_PORTS_PUBLIC_SCHEME", "ftp"),
        ("PLAYGROUND_PORTS_PUBLIC_PORT", "70000"),
        ("PLAYGROUND_PORTS_WORKERS", "0"),
    ]:
        with pytest.raises(config.ConfigError, match=name):
            config.load({name: value})
