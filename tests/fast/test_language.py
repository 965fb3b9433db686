"""The pages' language: the landing page renders Korean for a browser whose Accept-Language puts
Korean first, English otherwise, and the language switch's cookie wins over the header; both
catalogues (frontend/src/i18n/*.json, shared with the front end) have the same keys."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from playground import i18n
from playground.sandboxes.models import Session
from tests.fakeagent import FakeAgent

pytestmark = pytest.mark.django_db


def landing(client: Client, **headers: str) -> str:
    response = client.get("/", headers=headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_the_landing_page_is_korean_for_a_browser_that_prefers_korean(client: Client, agent: FakeAgent) -> None:
    html = landing(client, accept_language="ko-KR,ko;q=0.9,en-US;q=0.8")
    assert '<html lang="ko">' in html
    assert i18n.translate("ko", "landing.start") in html
    assert "Start playground" not in html


def test_the_landing_page_is_english_for_other_or_no_languages(client: Client, agent: FakeAgent) -> None:
    for header in ("de-DE,de;q=0.9", "en-US,en;q=0.9,ko;q=0.5", ""):
        html = landing(client, accept_language=header)
        assert '<html lang="en">' in html, header
        assert "Start playground" in html, header
        assert i18n.translate("ko", "landing.start") not in html, header


def test_the_switchs_cookie_wins_over_the_browsers_language(client: Client, agent: FakeAgent) -> None:
    client.cookies[i18n.LANGUAGE_COOKIE] = "en"
    assert "Start playground" in landing(client, accept_language="ko-KR,ko")
    client.cookies[i18n.LANGUAGE_COOKIE] = "ko"
    assert i18n.translate("ko", "landing.start") in landing(client, accept_language="en-US")


def test_a_cookie_naming_no_supported_language_falls_back_to_the_header(client: Client, agent: FakeAgent) -> None:
    client.cookies[i18n.LANGUAGE_COOKIE] = "xx"
    assert '<html lang="ko">' in landing(client, accept_language="ko")


def test_accept_language_qualities_order_the_choice() -> None:
    assert i18n._accepted("en;q=0.3, ko-KR;q=0.8, de") == ["de", "ko", "en"]
    assert i18n._accepted("ko;q=0, en") == ["en"]


def test_both_catalogues_have_the_same_keys_and_holes() -> None:
    english, korean = i18n.catalogue("en"), i18n.catalogue("ko")
    assert set(english) == set(korean)
    holes = re.compile(r"\{(\w+)\}")
    for key, sentence in english.items():
        assert set(holes.findall(sentence)) == set(holes.findall(korean[key])), key


# -- the server's sentences -------------------------------------------------------------------
def test_an_api_error_says_its_message_in_korean_to_a_korean_browser_and_keeps_its_code(client: Client) -> None:
    path = f"/api/sessions/{uuid.uuid4()}/"
    korean = client.get(path, headers={"accept-language": "ko-KR,ko;q=0.9"})
    english = client.get(path, headers={"accept-language": "en-US"})
    client.cookies[i18n.LANGUAGE_COOKIE] = "ko"
    switched = client.get(path, headers={"accept-language": "en-US"})
    for response in (korean, switched):
        assert response.status_code == 404 and response["Content-Language"] == "ko"
        assert response.json() == {"error": "unknown_session", "message": "그런 세션이나 노드가 없습니다."}
    assert english.json()["message"] == "There is no session with that id."
    assert "Accept-Language" in english["Vary"] and "Cookie" in english["Vary"]


def test_an_ended_sessions_message_is_in_the_readers_language(client: Client, agent: FakeAgent) -> None:
    session, key = Session.start("busybox", 3600, None)
    session.claim_end("expired")
    auth = {"authorization": f"Session {key}"}
    korean = client.get(f"/api/sessions/{session.id}/", headers={**auth, "accept-language": "ko"}).json()
    english = client.get(f"/api/sessions/{session.id}/", headers=auth).json()
    assert (korean["ended_reason"], korean["ended_message"]) == ("expired", "이 세션의 시간이 다 되었습니다.")
    assert english["ended_message"] == "This session's time ran out."
