"""The terminal websocket as the browser sees it: frames it may send, and who may connect."""

from __future__ import annotations

import json

import pytest

from playground.sandboxes import access, wsprotocol
from playground.sandboxes.wsprotocol import BadFrame
from sandbox.wire.protocol import Kind


@pytest.mark.parametrize(
    "frame,kind", [(b"\x00ls\n", Kind.DATA), (b"\x01{}", Kind.RESIZE), (b"\x02", Kind.PAUSE), (b"\x03", Kind.RESUME)]
)
def test_each_opcode_decodes_to_its_kind_and_the_rest_is_the_payload(frame: bytes, kind: Kind) -> None:
    assert wsprotocol.decode(frame) == (kind, frame[1:])


@pytest.mark.parametrize("frame,code", [(None, "text_frame"), (b"", "bad_opcode"), (b"\x04x", "bad_opcode")])
def test_a_text_frame_an_empty_frame_or_an_unknown_opcode_is_a_bad_frame(frame: bytes | None, code: str) -> None:
    with pytest.raises(BadFrame) as caught:
        wsprotocol.decode(frame)
    assert caught.value.code == code


def test_a_resize_payload_reads_as_cols_and_rows() -> None:
    assert wsprotocol.parse_size(b'{"cols": 120, "rows": "40"}') == (120, 40)


@pytest.mark.parametrize(
    "payload", [b"", b"[]", b'{"cols": 80}', b'{"cols": "x", "rows": 1}', b'{"cols": 1e999, "rows": 1}']
)
def test_a_resize_payload_without_two_integers_is_a_bad_frame(payload: bytes) -> None:
    with pytest.raises(BadFrame) as caught:
        wsprotocol.parse_size(payload)
    assert caught.value.code == "bad_resize"


def test_an_event_is_one_json_object_with_its_type() -> None:
    assert json.loads(wsprotocol.event("exit", reason="idle")) == {"type": "exit", "reason": "idle"}


def scope(query: bytes = b"", **headers: str) -> dict:
    return {"query_string": query, "headers": [(name.encode(), value.encode()) for name, value in headers.items()]}


def test_a_websocket_key_comes_from_the_query_before_the_cookie() -> None:
    assert access.websocket_key(scope(b"key=fromquery", cookie="pg_s=fromcookie"), "pg_s") == "fromquery"
    assert access.websocket_key(scope(cookie="other=x; pg_s=fromcookie"), "pg_s") == "fromcookie"
    assert access.websocket_key(scope(), "pg_s") is None


@pytest.mark.parametrize(
    "headers,allowed",
    [
        ({}, True),  # a script sends no Origin
        ({"origin": "https://play.example.org"}, True),
        ({"origin": "https://PLAY.example.org:8443"}, True),
        ({"origin": "https://evil.example.com"}, False),
        ({"origin": "null"}, False),
    ],
)
def test_a_websocket_origin_must_be_one_of_the_allowed_hosts(headers: dict[str, str], allowed: bool) -> None:
    assert access.websocket_origin_allowed(scope(**headers), ["play.example.org"]) is allowed


def test_any_origin_is_allowed_when_the_hosts_are_a_wildcard() -> None:
    assert access.websocket_origin_allowed(scope(origin="https://elsewhere.example"), ["*"])
