"""The server's sentences in the visitor's language (playground.wording): a translation when the
language has one and the sentence's fields fill its holes, the code's English otherwise; and
every translated key names something the server says."""

from __future__ import annotations

import re
from pathlib import Path

from playground import wording
from playground.labs.api import verdict
from playground.sandboxes import events
from playground.sandboxes.bridge import TAB_ENDS

REPO = Path(__file__).resolve().parents[2]


def test_a_translated_sentence_has_its_holes_filled_from_the_fields() -> None:
    said = wording.sentence("ko", "error.too_many_nodes", "This session already has 5 nodes.", {"limit": 5})
    assert said.startswith("이 세션에는 이미 노드가 5개")


def test_english_or_a_missing_translation_or_hole_leaves_the_codes_english() -> None:
    english = "This session already has 5 nodes."
    assert wording.sentence("en", "error.too_many_nodes", english, {"limit": 5}) == english
    assert wording.sentence("ko", "error.no_such_code", english, {}) == english
    assert wording.sentence("ko", "error.too_many_nodes", english, {}) == english  # no limit to tell
    assert wording.sentence("xx", "error.too_many_nodes", english, {"limit": 5}) == english


def test_durations_read_in_each_language() -> None:
    assert [wording.duration("en", s) for s in (3, 60, 300, 14400)] == ["3 seconds", "1 minute", "5 minutes", "4 hours"]
    assert [wording.duration("ko", s) for s in (3, 60, 300, 14400)] == ["3초", "1분", "5분", "4시간"]


def test_a_korean_viewers_events_say_their_message_in_korean() -> None:
    ended = wording.event("ko", "exit", {"reason": "expired", "message": events.end_message("expired")})
    assert ended["message"] == "이 세션의 시간이 다 되었습니다." and ended["reason"] == "expired"
    warned = wording.event("ko", "warning", {"seconds_left": 300, "extendable": True, "message": "ends in 5 minutes"})
    assert "5분 뒤에" in warned["message"] and "연장" in warned["message"]
    final = wording.event("ko", "warning", {"seconds_left": 59.5, "extendable": False, "message": "x"})
    assert "1분 뒤에" in final["message"] and "더 연장할 수 없습니다" in final["message"]
    removed = wording.event("ko", "exit", {"reason": "node_removed", "node": "node2", "message": "node2 was removed"})
    assert removed["message"].startswith("node2가 삭제되었습니다")
    tab = wording.event("ko", "exit", {"reason": "shell_exited", "terminal": 2, "message": TAB_ENDS["shell_exited"]})
    first = wording.event("ko", "exit", {"reason": "shell_exited", "terminal": 0, "message": "The shell exited."})
    assert "탭" in tab["message"] and "탭" not in first["message"]
    refused = wording.event("ko", "error", {"code": "events_unavailable", "message": "The terminal cannot connect."})
    assert "다시 연결합니다" in refused["message"]


def test_an_english_viewer_and_an_event_without_a_message_are_left_as_they_are() -> None:
    fields = {"reason": "expired", "message": events.end_message("expired")}
    assert wording.event("en", "exit", fields) == fields
    assert wording.event("ko", "status", {"state": "running", "message": ""}) == {"state": "running", "message": ""}
    assert wording.event("ko", "expiry", {"seconds_left": 3}) == {"seconds_left": 3}


def test_an_api_errors_body_keeps_its_fields_and_gets_its_message_translated() -> None:
    body = {"error": "session_ended", "message": "This session has ended; start a new one.", "step": 2}
    translated = wording.api_error("ko", body)
    assert translated == {**body, "message": "이 세션은 이미 끝났습니다. 새 세션을 시작하세요."}
    assert wording.api_error("ko", {"detail": "no code"}) == {"detail": "no code"}


def test_every_translated_key_names_something_the_server_says() -> None:
    """A key's code must appear as a string in the server's code (a typo would never be used)."""
    source = "\n".join(path.read_text() for path in (REPO / "playground").rglob("*.py"))
    quoted = set(re.findall(r"\"([a-z_]+)\"", source))
    fixed = {"warning.extendable", "warning.final", "duration.hours", "duration.minutes", "duration.seconds"}
    fixed |= {f"exit.tab_{reason}" for reason in TAB_ENDS}
    fixed |= {f"exit.{reason}" for reason in events.END_MESSAGES}
    unused = []
    for key in wording.translations("ko"):
        kind, code = key.partition(".")[0], key.rpartition(".")[2]
        if key not in fixed and not (kind in ("error", "exit", "status", "setup", "script") and code in quoted):
            unused.append(key)
    assert unused == []


def test_a_lab_scripts_verdict_is_in_the_labs_language() -> None:
    failed = {"timed_out": False, "truncated": False, "code": 2}
    assert verdict(failed, "setup", "ko") == "준비 스크립트가 실패했습니다(종료 상태 2)."
    assert verdict(failed, "setup", "en") == "The setup failed (exit status 2)."
    assert verdict({**failed, "code": 1}, "check", "ko").startswith("아직입니다.")
