"""The session registry's policy (:func:`playground.registry.push.decide`) as a table, its
credentials, and its storage chores (usage, removing a namespace, collecting unlinked blobs) on a
storage laid out as Distribution 2.8 lays it out."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from playground.registry import push
from playground.registry.front import PushSide, Request
from sandbox.runtime.layers import REGISTRY_HOST

ALICE = "pg-aaaaaaaaaaaa"
BOB = "pg-bbbbbbbbbbbb"
DIGEST = "sha256:" + "ab" * 32
LOGGED_IN = push.Caller(ALICE)
ANONYMOUS = push.Caller(None)
WRONG = push.Caller(None, True, "Wrong password for pg-aaaaaaaaaaaa; copy it from your session's page.")


def status_and_error(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split(b" ")[1]), json.loads(body)["errors"][0], head


@pytest.mark.parametrize(
    "method,target,caller,kind,write,status,code",
    [
        ("GET", "/v2/", LOGGED_IN, "push", "", 0, ""),
        ("GET", "/v2/", ANONYMOUS, "refuse", "", 401, "UNAUTHORIZED"),
        ("GET", "/v2/", WRONG, "refuse", "", 401, "UNAUTHORIZED"),
        ("GET", f"/v2/{ALICE}/web/manifests/1.0", LOGGED_IN, "push", "", 0, ""),
        ("HEAD", f"/v2/{ALICE}/web/blobs/{DIGEST}", LOGGED_IN, "push", "", 0, ""),
        ("POST", f"/v2/{ALICE}/web/blobs/uploads/", LOGGED_IN, "push", "start", 0, ""),
        ("PATCH", f"/v2/{ALICE}/web/blobs/uploads/u1?_state=x", LOGGED_IN, "push", "data", 0, ""),
        ("PUT", f"/v2/{ALICE}/web/blobs/uploads/u1?_state=x&digest={DIGEST}", LOGGED_IN, "push", "data", 0, ""),
        ("PUT", f"/v2/{ALICE}/web/manifests/1.0", LOGGED_IN, "push", "other", 0, ""),
        ("DELETE", f"/v2/{ALICE}/web/manifests/{DIGEST}", LOGGED_IN, "push", "other", 0, ""),
        (
            "POST",
            f"/v2/{ALICE}/web/blobs/uploads/?mount={DIGEST}&from={ALICE}/other",
            LOGGED_IN,
            "push",
            "start",
            0,
            "",
        ),
        (
            "POST",
            f"/v2/{ALICE}/web/blobs/uploads/?mount={DIGEST}&from={BOB}/web",
            LOGGED_IN,
            "refuse",
            "",
            403,
            "DENIED",
        ),
        (
            "POST",
            f"/v2/{ALICE}/web/blobs/uploads/?mount={DIGEST}&from=library/httpd",
            LOGGED_IN,
            "refuse",
            "",
            403,
            "DENIED",
        ),
        ("GET", f"/v2/{BOB}/web/manifests/1.0", LOGGED_IN, "refuse", "", 403, "DENIED"),
        ("PUT", f"/v2/{BOB}/web/manifests/1.0", LOGGED_IN, "refuse", "", 403, "DENIED"),
        ("POST", f"/v2/{BOB}/web/blobs/uploads/", LOGGED_IN, "refuse", "", 403, "DENIED"),
        ("GET", f"/v2/{ALICE}/web/manifests/1.0", ANONYMOUS, "refuse", "", 401, "UNAUTHORIZED"),
        ("POST", f"/v2/{ALICE}/web/blobs/uploads/", WRONG, "refuse", "", 401, "UNAUTHORIZED"),
        ("GET", "/v2/_catalog", LOGGED_IN, "refuse", "", 403, "DENIED"),
        ("GET", "/v2/_catalog?n=100", LOGGED_IN, "refuse", "", 403, "DENIED"),
        ("GET", "/v2/library/httpd/manifests/latest", LOGGED_IN, "refuse", "", 405, "UNSUPPORTED"),
        ("OPTIONS", f"/v2/{ALICE}/web/manifests/1.0", LOGGED_IN, "refuse", "", 405, "UNSUPPORTED"),
        ("GET", f"/v2/{ALICE}/../{BOB}/web/manifests/1.0", LOGGED_IN, "refuse", "", 400, "NAME_INVALID"),
        ("GET", f"/v2/{ALICE}/%2e%2e/{BOB}/web/manifests/1.0", LOGGED_IN, "refuse", "", 400, "NAME_INVALID"),
        ("GET", f"/v2/{ALICE}//web/manifests/1.0", LOGGED_IN, "refuse", "", 400, "NAME_INVALID"),
        ("GET", f"/v2/{ALICE}/./web/manifests/1.0", LOGGED_IN, "refuse", "", 400, "NAME_INVALID"),
        ("PUT", f"/v2/{ALICE}/web/blobs/uploads/u1?_state=a%2Fb&digest=sha256%3A00", LOGGED_IN, "push", "data", 0, ""),
    ],
)
def test_the_push_policy_table(
    method: str, target: str, caller: push.Caller, kind: str, write: str, status: int, code: str
) -> None:
    decision = push.decide(method, target, caller, "registry:5050")
    assert (decision.kind, decision.write) == (kind, write)
    if status:
        got_status, error, _head = status_and_error(decision.answer)
        assert (got_status, error["code"]) == (status, code)


def test_no_credentials_get_a_basic_challenge_that_docker_login_answers() -> None:
    _status, error, head = status_and_error(push.decide("GET", "/v2/", ANONYMOUS, "registry:5050").answer)
    assert b'WWW-Authenticate: Basic realm="Playground session registry"' in head
    assert "docker login registry:5050" in error["message"]


def test_another_sessions_namespace_is_refused_with_a_sentence_naming_the_callers_own() -> None:
    _status, error, _head = status_and_error(push.decide("GET", f"/v2/{BOB}/x/tags/list", LOGGED_IN).answer)
    assert f"{BOB} belongs to another session" in error["message"]
    assert f"registry/{ALICE}/" in error["message"]


def test_the_namespace_is_pg_and_twelve_hex_digits_of_the_short_id() -> None:
    assert push.namespace_of("0123456789abcdef0123") == "pg-0123456789ab"
    assert push.NAMESPACE.fullmatch(push.namespace_of("0123456789abcdef0123"))


def test_the_password_depends_on_the_secret_key_and_the_sessions_key_hash_and_shows_neither() -> None:
    password = push.password_for("site-secret", "f" * 64)
    assert len(password) == 24 and "site-secret" not in password and "f" * 8 not in password
    assert password == push.password_for("site-secret", "f" * 64)
    assert password != push.password_for("other-secret", "f" * 64)
    assert password != push.password_for("site-secret", "e" * 64)


@pytest.mark.parametrize(
    "header,expected",
    [
        (
            "Basic " + base64.b64encode(b"pg-aaaaaaaaaaaa:pw:with:colons").decode(),
            ("pg-aaaaaaaaaaaa", "pw:with:colons"),
        ),
        ("basic " + base64.b64encode(b"u:p").decode(), ("u", "p")),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic !!!", None),
        ("Bearer abc", None),
    ],
)
def test_basic_credentials_are_read_or_refused(header: str, expected: tuple[str, str] | None) -> None:
    assert push.basic_credentials([("Authorization", header)]) == expected


@pytest.mark.parametrize(
    "target,headers,claimed",
    [
        (f"/v2/{ALICE}/web/manifests/1.0", [("Host", "10.89.0.1:5050")], True),
        ("/v2/", [("Host", "registry:5050")], True),
        ("/v2/", [("Host", "10.89.0.1:5050"), ("Authorization", "Basic dTpw")], True),
        ("/v2/", [("Host", "10.89.0.1:5050")], False),  # the engine's mirror ping
        ("/v2/library/httpd/manifests/latest", [("Host", "registry:5050")], False),
        ("/v2/_catalog", [("Host", "registry:5050")], True),
    ],
)
def test_the_front_tells_pushes_from_pulls_of_the_mirror(
    target: str, headers: list[tuple[str, str]], claimed: bool
) -> None:
    assert PushSide.claims(Request("GET", target, headers)) is claimed


def test_the_sandboxes_name_for_the_gateway_is_the_push_registrys_name() -> None:
    assert REGISTRY_HOST == push.PUSH_NAME


# -- the storage ------------------------------------------------------------------------------------
def blob(root: Path, size: int, fill: str) -> str:
    digest = "sha256:" + fill * 64
    data = root / "docker/registry/v2/blobs/sha256" / (fill * 2) / (fill * 64) / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(b"x" * size)
    return digest


def link(root: Path, repository: str, kind: str, digest: str) -> None:
    path = root / "docker/registry/v2/repositories" / repository / kind / "sha256" / digest[7:] / "link"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest)


def test_usage_counts_each_linked_layer_once_and_uploads_in_progress(tmp_path: Path) -> None:
    shared, own, manifest = blob(tmp_path, 1000, "1"), blob(tmp_path, 300, "2"), blob(tmp_path, 50, "3")
    link(tmp_path, f"{ALICE}/web", "_layers", shared)
    link(tmp_path, f"{ALICE}/db", "_layers", shared)
    link(tmp_path, f"{ALICE}/db", "_layers", own)
    link(tmp_path, f"{ALICE}/db", "_manifests/revisions", manifest)
    link(tmp_path, f"{BOB}/web", "_layers", blob(tmp_path, 9999, "4"))
    upload = tmp_path / f"docker/registry/v2/repositories/{ALICE}/web/_uploads/u1/data"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"y" * 7)
    assert push.usage(tmp_path, ALICE) == 1000 + 300 + 7
    assert push.usage(tmp_path, "pg-cccccccccccc") == 0


def test_an_ended_sessions_namespace_goes_and_then_only_its_own_blobs_are_collected(tmp_path: Path) -> None:
    shared, alices = blob(tmp_path, 1000, "1"), blob(tmp_path, 300, "2")
    link(tmp_path, f"{ALICE}/web", "_layers", shared)
    link(tmp_path, f"{ALICE}/web", "_layers", alices)
    link(tmp_path, f"{BOB}/web", "_layers", shared)
    assert push.namespaces(tmp_path) == [ALICE, BOB]
    assert push.remove_namespace(tmp_path, ALICE) is True
    assert push.namespaces(tmp_path) == [BOB]
    assert push.collect(tmp_path) == 300
    blobs = tmp_path / "docker/registry/v2/blobs/sha256"
    assert sorted(p.name for p in blobs.glob("*/*")) == ["1" * 64]
    assert push.remove_namespace(tmp_path, ALICE) is False


def test_only_push_namespaces_can_be_removed(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        push.remove_namespace(tmp_path, "library")


def test_the_quota_sentence_says_what_is_used_and_how_to_free_it() -> None:
    sentence = push.over_quota(400_000_000, 200_000_000, 512 * 1024 * 1024)
    assert "400.0 MB used of 536.9 MB" in sentence and "200.0 MB more" in sentence
    assert "start a new session" in sentence
    assert push.over_quota(600_000_000, 0, 512 * 1024 * 1024).startswith(
        "Your session's registry space is full: 600.0 MB used of 536.9 MB."
    )


async def test_a_tls_hello_is_closed_at_once_so_the_engine_falls_back_to_http_without_waiting(tmp_path: Path) -> None:
    import asyncio

    from playground.registry.front import Front, listening_socket

    sock = listening_socket("127.0.0.1", 0)
    server = await asyncio.start_server(Front("127.0.0.1", 1, tmp_path).serve_client, sock=sock)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        server.close()
