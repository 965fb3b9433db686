"""The JSON of a seeded image: its configuration and its Docker schema 2 manifest.

Schema 2 (``application/vnd.docker.distribution.manifest.v2+json``) because it is what Debian's
docker.io 20.10 pulls from a mirror without a second thought; its configuration is Docker's
image JSON (``application/vnd.docker.container.image.v1+json``), the same fields as OCI's:
``config`` (Env, Cmd, WorkingDir, ExposedPorts, StopSignal, Labels), ``rootfs.diff_ids`` (the
sha256 of each layer's tar before compression) and a ``history`` line per layer. Every byte
follows from the arguments (``created`` is fixed), so the same layers and settings always make
the same digests. Pure functions; imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CREATED = "1970-01-01T00:00:00Z"  # as sandbox.images.dockerarchive: no build time in the bytes


@dataclass(frozen=True)
class Settings:
    """How ``docker run`` starts the image, and what its labels say."""

    cmd: Sequence[str]
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    workdir: str = ""
    ports: Sequence[str] = ()  # "80/tcp"
    stop_signal: str = ""  # "SIGQUIT"; "" leaves the engine's default (SIGTERM)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerRef:
    """A layer as the JSON names it (see layers.Layer) and the history line that made it."""

    digest: str
    size: int
    diff_id: str
    created_by: str


def config(settings: Settings, layers: Sequence[LayerRef], architecture: str) -> bytes:
    """The image configuration (Docker's and OCI's fields alike), as the bytes its digest is of."""
    runtime: dict[str, Any] = {"Env": list(settings.env), "Cmd": list(settings.cmd)}
    if settings.workdir:
        runtime["WorkingDir"] = settings.workdir
    if settings.ports:
        runtime["ExposedPorts"] = {port: {} for port in settings.ports}
    if settings.stop_signal:
        runtime["StopSignal"] = settings.stop_signal
    runtime["Labels"] = dict(sorted(settings.labels.items()))
    document = {
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": layer.created_by} for layer in layers],
    }
    return _dump(document)


def manifest(config_bytes: bytes, layers: Sequence[LayerRef]) -> bytes:
    """The schema 2 manifest of the configuration ``config_bytes`` and ``layers`` (bottom first)."""
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config_bytes), "digest": digest(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "size": layer.size, "digest": layer.digest} for layer in layers],
    }
    return _dump(document)


def digest(content: bytes) -> str:
    """``sha256:<hex>`` of ``content``, a blob's or a manifest's name in a registry."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=3).encode() + b"\n"
