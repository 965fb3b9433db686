"""What the landing page offers, through Django's test client and a fake agent: the ready images
to start, with the default chosen, or a template's nodes, and ``GET /api/sessions/``, the visitor's live sessions as the
cookies of their starts name them (never a listing by address)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from django.test import Client
from pytest_django import Settings

from playground.sandboxes.models import Session
from tests.fakeagent import FakeAgent
from tests.fast.test_api import configure

pytestmark = pytest.mark.django_db

TRIO = """
title = "A trio & more"
description = "Leads <b>two</b> others."
image = "busybox"

[[nodes]]
role = "leader"

[[nodes]]
role = "follower"
count = 2
"""


def start(client: Client) -> dict[str, str]:
    response = client.post("/api/sessions/", data="{}", content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def listed(client: Client) -> list[str]:
    response = client.get("/api/sessions/")
    assert response.status_code == 200, response.content
    return [session["id"] for session in response.json()["sessions"]]


def test_the_landing_page_offers_every_ready_image_with_the_agents_default_chosen(
    client: Client, agent: FakeAgent
) -> None:
    html = client.get("/").content.decode()
    options = re.findall(r'<option value="([^"]+)"( selected)?>', html)
    assert options == [("busybox", " selected"), ("debian", "")], options


def test_the_landing_page_offers_the_configured_default_alone_while_the_agent_does_not_answer(
    client: Client, settings: Settings
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="image"' not in html  # no picker for one image: the image is named among the facts
    assert f"Image <code>{settings.PLAYGROUND.default_image}</code>" in html


def test_a_browser_is_shown_the_live_sessions_it_started_newest_first(client: Client, agent: FakeAgent) -> None:
    first, second = start(client), start(client)
    assert listed(client) == [second["id"], first["id"]]
    shown = client.get("/api/sessions/").json()["sessions"][0]
    assert "key" not in shown and shown["image"] == "busybox" and shown["instances"][0]["name"] == "node1"


def test_an_ended_session_is_no_longer_listed(client: Client, agent: FakeAgent) -> None:
    first, second = start(client), start(client)
    assert client.delete(f"/api/sessions/{first['id']}/").status_code == 204
    assert listed(client) == [second["id"]]


def test_another_browser_is_shown_none_of_them_even_from_the_same_address(client: Client, agent: FakeAgent) -> None:
    start(client)
    assert listed(Client()) == []


def test_a_cookie_with_the_right_name_and_a_wrong_key_lists_nothing(client: Client, agent: FakeAgent) -> None:
    session = start(client)
    stranger = Client()
    stranger.cookies[Session.objects.get(pk=session["id"]).cookie_name] = "not-the-key"
    stranger.cookies[f"pg_{uuid.uuid4().hex}"] = session["key"]  # the key under another session's name
    stranger.cookies["pg_not-a-session"] = session["key"]
    assert listed(stranger) == []


def test_listing_with_a_method_other_than_get_or_post_is_405_naming_both(client: Client) -> None:
    response = client.put("/api/sessions/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert response.json()["error"] == "method_not_allowed"


def test_the_landing_page_offers_each_template_with_its_node_count_roles_and_description(
    client: Client, agent: FakeAgent, settings: Settings, tmp_path: Path
) -> None:
    configure(settings, templates_dir=tmp_path)
    (tmp_path / "trio.toml").write_text(TRIO)
    html = client.get("/").content.decode()
    assert 'id="choice-node" name="choice" value="node" checked' in html  # one node of an image, unless chosen
    assert re.findall(r'<option value="trio" data-title="([^"]+)">([^<]+)</option>', html) == [
        ("A trio &amp; more", "A trio &amp; more (3 nodes)")
    ]
    about = html[html.index('<div class="template-about" data-template="trio"') :]
    words = re.sub(r"<[^>]+>|\s+", " ", about[: about.index("</div>")]).split()
    assert " ".join(words) == "3 nodes: node1 leader · node2–node3 follower Leads &lt;b&gt;two&lt;/b&gt; others.", words


def test_the_landing_page_has_no_template_choice_without_templates(
    client: Client, agent: FakeAgent, settings: Settings, tmp_path: Path
) -> None:
    configure(settings, templates_dir=tmp_path)
    html = client.get("/").content.decode()
    assert "choice-template" not in html and "template-about" not in html
    assert '<label for="image">Image</label>' in html  # the image's menu as before (two images here)
