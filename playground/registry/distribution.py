"""Writing to the mirror's storage through the Distribution HTTP API, and reading it back.

The mirror's storage (:func:`playground.registry.paths.mirror_root`) is a Distribution
filesystem root. Seeding never writes its files itself: :func:`writable_registry` starts
Debian's ``docker-registry`` of its own on that root, bound to a free loopback port, read-write,
for as long as the seeding takes (the serving mirror may run meanwhile: it only reads, or
proxies), and :class:`Pusher` speaks the registry API to it: a blob is put in one request
(monolithic upload, ``POST`` then ``PUT ?digest=``), or mounted from another repository
of the same storage that has it already, then the manifest is ``PUT`` under its tag.

Reading is done on the files, without a registry (a second of ``make run`` does not pay for
starting one): a tag's ``current/link`` names the manifest's digest, the blob store holds it.
That layout is Distribution's storage driver's (``docker/registry/v2/repositories/<name>/
_manifests/tags/<tag>/current/link``, ``docker/registry/v2/blobs/sha256/<2>/<hex>/data``).

Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.registry.paths import blob_path, storage

REGISTRY_START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 300.0


class RegistryError(Exception):
    """The writable registry cannot start or refused a request; the message says what to do."""


@contextlib.contextmanager
def writable_registry(root: Path) -> Iterator[str]:
    """Debian's ``docker-registry`` serving ``root`` read-write on 127.0.0.1; yields ``host:port``.

    Stopped (SIGTERM, then SIGKILL) and its configuration removed when the block ends; killed
    with the process that started it (``setpriv --pdeathsig``), however that one ends.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryError(
            "docker-registry is not installed; install Debian's docker-registry package "
            "(apt-get install docker-registry) or run 'make deps'."
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="playground-registry-") as work:
        for _attempt in range(3):  # another process may take the free port before the registry binds it
            address = f"127.0.0.1:{free_port()}"
            config = Path(work) / "config.yml"
            config.write_text(_config(root, address))
            log_path = Path(work) / "registry.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(  # setpriv: killed with us, even by SIGKILL
                    ["setpriv", "--pdeathsig", "KILL", "--", binary, "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                if _wait_until_serving(proc, address):
                    yield address
                    return
            finally:
                _stop(proc)
        raise RegistryError(
            f"docker-registry did not start on a loopback port; its log: {log_path.read_text(errors='replace')[-800:]}"
        )


def _config(root: Path, address: str) -> str:
    """docker-registry's configuration: the filesystem root, loopback only, no upload purging."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {json.dumps(str(root))}\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        f"http:\n  addr: {address}\n"
    )


def _wait_until_serving(proc: subprocess.Popen[bytes], address: str) -> bool:
    """Whether the registry at ``address`` answers ``/v2/`` before it exits or the timeout passes."""
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, _, _ = request(address, "GET", "/v2/", timeout=2)
            if status == 200:
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(
    address: str,
    method: str,
    path: str,
    body: bytes | Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to the registry at ``address``: (status, headers, body)."""
    connection = http.client.HTTPConnection(address, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@dataclass
class Pusher:
    """Pushes blobs and manifests to the registry at ``address`` (``host:port``)."""

    address: str

    def has_blob(self, repository: str, digest: str) -> bool:
        status, _, _ = request(self.address, "HEAD", f"/v2/{repository}/blobs/{digest}")
        return status == 200

    def push_blob(self, repository: str, digest: str, content: Path | bytes, mount_from: str = "") -> str:
        """Make blob ``digest`` (the file ``content``, or its bytes) part of ``repository``: "present",
        "mounted" or "uploaded"."""
        if self.has_blob(repository, digest):
            return "present"
        query = urllib.parse.urlencode({"mount": digest, "from": mount_from}) if mount_from else ""
        status, headers, body = request(self.address, "POST", f"/v2/{repository}/blobs/uploads/?{query}", b"")
        if status == 201:
            return "mounted"
        self._expect(status, 202, body, f"starting the upload of {digest} to {repository}")
        location = urllib.parse.urlsplit(headers["location"])
        target = (
            location.path + "?" + "&".join(filter(None, [location.query, urllib.parse.urlencode({"digest": digest})]))
        )
        size = len(content) if isinstance(content, bytes) else content.stat().st_size
        with contextlib.ExitStack() as stack:
            body_out = content if isinstance(content, bytes) else stack.enter_context(open(content, "rb"))
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            status, _, body = request(self.address, "PUT", target, body_out, headers)
        self._expect(status, 201, body, f"uploading {digest} ({size} bytes) to {repository}")
        return "uploaded"

    def push_manifest(self, repository: str, tag: str, content: bytes, media_type: str) -> None:
        status, _, body = request(
            self.address, "PUT", f"/v2/{repository}/manifests/{tag}", content, {"Content-Type": media_type}
        )
        self._expect(status, 201, body, f"putting the manifest of {repository}:{tag}")

    @staticmethod
    def _expect(status: int, wanted: int, body: bytes, what: str) -> None:
        if status != wanted:
            raise RegistryError(f"the registry refused {what}: HTTP {status} {body[:300].decode(errors='replace')}")


# Reading the storage's files.


def tag_digest(root: Path, repository: str, tag: str) -> str:
    """The digest of the manifest ``repository:tag`` names in the storage, or "" if none."""
    link = storage(root) / "repositories" / repository / "_manifests" / "tags" / tag / "current" / "link"
    try:
        digest = link.read_text().strip()
    except OSError:
        return ""
    return digest if blob_path(root, digest).exists() else ""


def read_blob_json(root: Path, digest: str) -> dict[str, Any]:
    return dict(json.loads(blob_path(root, digest).read_bytes()))


def image_config(root: Path, repository: str, tag: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(manifest, configuration) of ``repository:tag`` in the storage, or None when it has no such
    tag or the manifest is not a single image (an index is listed but not inspected)."""
    digest = tag_digest(root, repository, tag)
    if not digest:
        return None
    manifest = read_blob_json(root, digest)
    manifest["digest"] = digest
    if "config" not in manifest or not blob_path(root, manifest["config"]["digest"]).exists():
        return manifest, {}
    return manifest, read_blob_json(root, manifest["config"]["digest"])


def repositories(root: Path) -> dict[str, list[str]]:
    """Every repository of the storage and its tags, sorted."""
    base = storage(root) / "repositories"
    found: dict[str, list[str]] = {}
    for dirpath, dirnames, _ in os.walk(base):
        if "_manifests" in dirnames:
            tags = Path(dirpath) / "_manifests" / "tags"
            name = str(Path(dirpath).relative_to(base))
            found[name] = sorted(p.name for p in tags.iterdir()) if tags.is_dir() else []
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    return dict(sorted(found.items()))
