"""The registry front's push side with a real docker-registry behind it (writable, on loopback) and
the session passwords of two made-up sessions: uploads as docker sends them (``POST``, a chunked
``PATCH``, ``PUT ?digest=``, the manifest), the namespaces kept apart, the quota, and the sweep
that removes an ended session's images and frees its blobs. About 2 s; no root."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from playground.registry import push
from playground.registry.front import Front, PushSide, listening_socket
from playground.registry.paths import blob_path
from tests.mirrorkit import MANIFEST_V2, Image, start_registry, tiny_image

ALICE, BOB = "pg-aaaaaaaaaaaa", "pg-bbbbbbbbbbbb"
QUOTA = 3 * 1024 * 1024
IMAGE = tiny_image("alice's own")  # about 1 MB


@dataclass
class Client:
    """Speaks to the front as dockerd does, with a session's Basic credentials (or none)."""

    port: int
    user: str = ""
    password: str = ""

    def call(
        self, method: str, target: str, body: bytes | None = None, chunked: bool = False, content_type: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": "registry:5050", "Accept": MANIFEST_V2}
        if content_type:
            headers["Content-Type"] = content_type
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            if chunked and body is not None:
                pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
                connection.request(method, target, body=pieces, headers=headers, encode_chunked=True)
            else:
                connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def push_blob(self, repository: str, digest: str, data: bytes) -> tuple[int, bytes]:
        """POST, one chunked PATCH, PUT ?digest=: the status and body of the first step that fails, or (201, b"")."""
        status, headers, body = self.call("POST", f"/v2/{repository}/blobs/uploads/", b"")
        if status != 202:
            return status, body
        location = urlsplit(headers["location"])
        status, headers, body = self.call("PATCH", f"{location.path}?{location.query}", data, chunked=True)
        if status != 202:
            return status, body
        location = urlsplit(headers["location"])
        status, _, body = self.call("PUT", f"{location.path}?{location.query}&digest={digest}", b"")
        return (201, b"") if status == 201 else (status, body)

    def push_image(self, repository: str, tag: str, image: Image) -> tuple[int, bytes]:
        for digest, data in image.blobs.items():
            status, body = self.push_blob(repository, digest, data)
            if status != 201:
                return status, body
        status, _, body = self.call(
            "PUT", f"/v2/{repository}/manifests/{tag}", image.manifest, content_type=MANIFEST_V2
        )
        return status, body


def error_of(body: bytes) -> dict[str, str]:
    return json.loads(body)["errors"][0]


@dataclass
class Setup:
    side: PushSide
    root: Path
    port: int
    live: dict[str, str]  # namespace -> password of its active session

    def mirror_holds(self, digest: str, data: bytes) -> None:
        """Put a blob where the mirror's storage keeps one (an image pulled through the mirror)."""
        path = blob_path(self.side.mirror or Path("/nonexistent"), digest)
        path.parent.mkdir(parents=True)
        path.write_bytes(data)

    def client(self, user: str = "", password: str | None = None) -> Client:
        return Client(self.port, user, self.live.get(user, "") if password is None else password)


@contextlib.contextmanager
def registry(root: Path, work: Path) -> Iterator[str]:
    running = start_registry(root, work)
    try:
        yield running.address
    finally:
        running.stop()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    live = {ALICE: push.password_for("secret", "a" * 64), BOB: push.password_for("secret", "b" * 64)}

    async def password(namespace: str) -> str | None:
        return live.get(namespace)

    root = tmp_path / "push"
    with registry(root, tmp_path / "work") as address:
        host, port = address.split(":")
        side = PushSide(host, int(port), root, QUOTA, password, mirror=tmp_path / "mirror")
        front = Front("127.0.0.1", 1, tmp_path / "mirror", push=side)
        sock = listening_socket("127.0.0.1", 0)
        server = await asyncio.start_server(front.serve_client, sock=sock)
        try:
            yield Setup(side, root, sock.getsockname()[1], live)
        finally:
            server.close()


async def test_a_session_pushes_and_pulls_back_under_its_namespace(setup: Setup) -> None:
    alice = setup.client(ALICE)
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/web", "1.0", IMAGE) == (201, b"")
    status, _, body = await asyncio.to_thread(alice.call, "GET", f"/v2/{ALICE}/web/manifests/1.0")
    assert status == 200 and body == IMAGE.manifest
    layer = json.loads(IMAGE.manifest)["layers"][0]["digest"]
    status, _, body = await asyncio.to_thread(alice.call, "GET", f"/v2/{ALICE}/web/blobs/{layer}")
    assert status == 200 and body == IMAGE.layer


async def test_docker_login_gets_a_challenge_then_succeeds_and_fails_with_a_wrong_password(setup: Setup) -> None:
    status, headers, _ = await asyncio.to_thread(setup.client().call, "GET", "/v2/")
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    assert (await asyncio.to_thread(setup.client(ALICE).call, "GET", "/v2/"))[0] == 200
    status, _, body = await asyncio.to_thread(setup.client(ALICE, "wrong").call, "GET", "/v2/")
    assert status == 401 and "Wrong password" in error_of(body)["message"]
    status, _, body = await asyncio.to_thread(setup.client(ALICE, setup.live[BOB]).call, "GET", "/v2/")
    assert status == 401, "another session's password is not this user's"


async def test_another_session_can_neither_pull_nor_overwrite_nor_mount_from_the_namespace(setup: Setup) -> None:
    alice, bob = setup.client(ALICE), setup.client(BOB)
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/web", "1.0", IMAGE) == (201, b"")
    status, _, body = await asyncio.to_thread(bob.call, "GET", f"/v2/{ALICE}/web/manifests/1.0")
    assert status == 403 and error_of(body)["code"] == "DENIED"
    status, body = await asyncio.to_thread(bob.push_image, f"{ALICE}/web", "1.0", tiny_image("bob's"))
    assert status == 403 and "belongs to another session" in error_of(body)["message"]
    layer = json.loads(IMAGE.manifest)["layers"][0]["digest"]
    status, _, body = await asyncio.to_thread(
        bob.call, "POST", f"/v2/{BOB}/web/blobs/uploads/?mount={layer}&from={ALICE}/web", b""
    )
    assert status == 403
    # Bob's own repository does not have Alice's layer, whatever its digest.
    assert (await asyncio.to_thread(bob.call, "HEAD", f"/v2/{BOB}/web/blobs/{layer}"))[0] == 404
    status, _, body = await asyncio.to_thread(alice.call, "GET", f"/v2/{ALICE}/web/manifests/1.0")
    assert status == 200 and body == IMAGE.manifest


async def test_an_upload_over_the_quota_is_denied_with_a_sentence_and_leaves_nothing(setup: Setup) -> None:
    alice = setup.client(ALICE)
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/web", "1.0", IMAGE) == (201, b"")
    used = push.usage(setup.root, ALICE)
    big = tiny_image("too big", padding=QUOTA)
    status, body = await asyncio.to_thread(alice.push_image, f"{ALICE}/big", "1.0", big)
    assert status == 403
    error = error_of(body)
    assert error["code"] == "DENIED" and "over its quota" in error["message"] and "used of 3.1 MB" in error["message"]
    assert push.usage(setup.root, ALICE) == used, "the refused upload was cancelled"
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/web", "1.1", tiny_image("small again")) == (201, b"")


async def test_a_sweep_removes_an_ended_sessions_images_and_frees_only_its_blobs(setup: Setup) -> None:
    alice, bob = setup.client(ALICE), setup.client(BOB)
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/web", "1.0", IMAGE) == (201, b"")
    assert await asyncio.to_thread(bob.push_image, f"{BOB}/web", "1.0", IMAGE) == (201, b"")  # the same blobs
    assert await asyncio.to_thread(alice.push_image, f"{ALICE}/db", "1.0", tiny_image("alice's db")) == (201, b"")
    password = setup.live.pop(ALICE)  # Alice's session ends
    await setup.side.sweep()
    assert push.namespaces(setup.root) == [BOB]
    assert 0 < setup.side.collected < 2 * len(IMAGE.layer), "only alice's db layer and manifests were freed"
    status, _, body = await asyncio.to_thread(
        setup.client(ALICE, password).call, "GET", f"/v2/{ALICE}/web/manifests/1.0"
    )
    assert status == 401
    status, _, body = await asyncio.to_thread(bob.call, "GET", f"/v2/{BOB}/web/manifests/1.0")
    assert status == 200 and body == IMAGE.manifest
    layer = json.loads(IMAGE.manifest)["layers"][0]["digest"]
    status, _, body = await asyncio.to_thread(bob.call, "GET", f"/v2/{BOB}/web/blobs/{layer}")
    assert status == 200 and body == IMAGE.layer


async def test_a_manifest_over_four_mib_is_denied_before_the_registry_reads_it_all(setup: Setup) -> None:
    alice = setup.client(ALICE)
    status, _, body = await asyncio.to_thread(
        alice.call, "PUT", f"/v2/{ALICE}/web/manifests/huge", b"{" + b" " * (5 * 1024 * 1024) + b"}", False, MANIFEST_V2
    )
    assert status == 403 and "at most 4 MiB" in error_of(body)["message"]


async def test_a_layer_the_mirror_holds_is_linked_into_the_pushing_repository_instead_of_uploaded(setup: Setup) -> None:
    """As ``FROM httpd`` pushed: docker HEADs each layer first; the mirror's is there at once."""
    alice = setup.client(ALICE)
    layer = json.loads(IMAGE.manifest)["layers"][0]["digest"]
    setup.mirror_holds(layer, IMAGE.layer)
    status, headers, _ = await asyncio.to_thread(alice.call, "HEAD", f"/v2/{ALICE}/web/blobs/{layer}")
    assert status == 200 and int(headers["content-length"]) == len(IMAGE.layer)
    config = json.loads(IMAGE.manifest)["config"]["digest"]
    assert await asyncio.to_thread(alice.push_blob, f"{ALICE}/web", config, IMAGE.blobs[config]) == (201, b"")
    status, _, body = await asyncio.to_thread(
        alice.call, "PUT", f"/v2/{ALICE}/web/manifests/1.0", IMAGE.manifest, content_type=MANIFEST_V2
    )
    assert status == 201, body
    status, _, body = await asyncio.to_thread(alice.call, "GET", f"/v2/{ALICE}/web/blobs/{layer}")
    assert status == 200 and body == IMAGE.layer
    assert push.usage(setup.root, ALICE) >= len(IMAGE.layer), "a linked layer counts against the quota"
    # Only the asking repository got it, and a layer the mirror does not hold is still unknown.
    assert (await asyncio.to_thread(alice.call, "HEAD", f"/v2/{ALICE}/db/blobs/{config}"))[0] == 404


async def test_a_mirrored_layer_over_the_quota_is_not_linked_and_its_upload_is_refused(setup: Setup) -> None:
    alice = setup.client(ALICE)
    big = tiny_image("mirrored but big", padding=QUOTA)
    layer = json.loads(big.manifest)["layers"][0]["digest"]
    setup.mirror_holds(layer, big.layer)
    assert (await asyncio.to_thread(alice.call, "HEAD", f"/v2/{ALICE}/big/blobs/{layer}"))[0] == 404
    status, body = await asyncio.to_thread(alice.push_image, f"{ALICE}/big", "1.0", big)
    assert status == 403 and "over its quota" in error_of(body)["message"]
