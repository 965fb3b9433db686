"""Registry mirror test kit: a tiny one-layer image made in Python (a static busybox and a marker
file), pushed through Distribution's HTTP API (``playground.registry.distribution.Pusher``), and an
upstream ``docker-registry`` on loopback whose access log says which blobs it served.

``registry(root, work)`` runs Debian's docker-registry (writable, plain HTTP on 127.0.0.1, its
access log on) on a storage root; ``push`` puts an image in it; ``blob_gets`` reads the log.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from playground.registry.distribution import Pusher
from tests.stack import free_port
from tests.waiting import eventually

BUSYBOX = Path("/bin/busybox")  # busybox-static, which make run installs
APPLETS = ("sh", "cat", "echo", "ls", "wget")
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    """A one-layer image: its layer (gzipped tar), config and manifest."""

    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha256(self.layer): self.layer, sha256(self.config): self.config}


def _tar_entry(tar: tarfile.TarFile, name: str, kind: bytes, mode: int = 0o755, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    tar.addfile(info)


def tiny_image(marker: str, padding: int = 0) -> Image:
    """A static busybox (``sh``, ``cat``, ``echo``, ``ls``, ``wget``) and ``/hello.txt`` holding ``marker``:
    about 1 MB gzipped; another marker, another layer. ``padding`` bytes of random data in
    ``/padding`` make the layer that much bigger (they do not compress)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_entry(tar, "bin", tarfile.DIRTYPE)
        _tar_entry(tar, "tmp", tarfile.DIRTYPE, 0o1777)
        info = tarfile.TarInfo("bin/busybox")
        info.mode, info.size = 0o755, BUSYBOX.stat().st_size
        with BUSYBOX.open("rb") as binary:
            tar.addfile(info, binary)
        for applet in APPLETS:
            _tar_entry(tar, f"bin/{applet}", tarfile.SYMTYPE, link="busybox")
        text = f"{marker}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.mode, info.size = 0o644, len(text)
        tar.addfile(info, io.BytesIO(text))
        if padding:
            info = tarfile.TarInfo("padding")
            info.mode, info.size = 0o644, padding
            tar.addfile(info, io.BytesIO(os.urandom(padding)))
    diff = raw.getvalue()
    layer = gzip.compress(diff, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(diff)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": sha256(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": sha256(layer),
                }
            ],
        }
    ).encode()
    return Image(layer, config, manifest)


def push(address: str, repository: str, tag: str, image: Image) -> None:
    """Push ``image`` as ``repository:tag`` to the writable registry at ``address``."""
    pusher = Pusher(address)
    with tempfile.TemporaryDirectory() as work:
        for digest, blob in image.blobs.items():
            path = Path(work) / digest.replace(":", "_")
            path.write_bytes(blob)
            pusher.push_blob(repository, digest, path)
    pusher.push_manifest(repository, tag, image.manifest, MANIFEST_V2)


@dataclass
class Registry:
    """A running docker-registry: where it answers and its log (the access log included)."""

    address: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


def start_registry(root: Path, work: Path, port: int | None = None) -> Registry:
    """A writable docker-registry on 127.0.0.1 (``port``, or a free one) storing under ``root``; its log in ``work``."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is needed for the registry tests; 'make deps' installs it")
    address = f"127.0.0.1:{port or free_port()}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: false\n"
        f"http:\n  addr: {address}\n"
    )
    log_path = work / "registry.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    running = Registry(address, log_path, proc)

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                return True
        except OSError:
            return False

    try:
        eventually(answers, f"docker-registry answers on {address}", timeout=20, interval=0.1)
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def registry(root: Path, work: Path, port: int | None = None) -> Iterator[Registry]:
    """``start_registry`` for the block; stopped after."""
    running = start_registry(root, work, port)
    try:
        yield running
    finally:
        running.stop()


_ACCESS = re.compile(r'"(GET|HEAD) (/v2/[^ "]+) HTTP/[0-9.]+" (\d{3})')


def blob_gets(log_path: Path) -> Counter[str]:
    """How many times each blob (by digest) was fetched (GET) from the registry whose log this is."""
    text = log_path.read_text(errors="replace")
    return Counter(m[2].rsplit("/", 1)[1] for m in _ACCESS.finditer(text) if m[1] == "GET" and "/blobs/" in m[2])
