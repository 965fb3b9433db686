"""Writing a one-layer Docker image as a ``docker save`` archive, without Docker.

A recipe's program with a ``docker_image`` (see :mod:`sandbox.images.recipe`) is shipped in the
image this way, so that the Docker engine inside a sandbox can ``docker load`` it offline. The
archive is what ``docker save`` writes and ``docker load`` reads:

- ``<layer digest>/layer.tar``: the layer, an uncompressed tar of the image's files;
- ``<config digest>.json``: the image configuration (command, environment, architecture), whose
  ``rootfs.diff_ids`` is the sha256 of that layer tar (``docker load`` checks it);
- ``manifest.json``: ``[{"Config": ..., "RepoTags": [name:tag], "Layers": [...]}]``.

Every entry has owner 0:0 and time 0, so the same program always makes the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import PurePosixPath

EPOCH = "1970-01-01T00:00:00Z"


def layer_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar of ``files`` (absolute path -> (content, mode)) and their parent directories."""
    directories = sorted(
        {str(parent) for path in files for parent in PurePosixPath(path.lstrip("/")).parents if str(parent) != "."}
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in directories:
            tar.addfile(_entry(directory, tarfile.DIRTYPE, 0o755, 0))
        for path, (content, mode) in sorted(files.items()):
            tar.addfile(_entry(path.lstrip("/"), tarfile.REGTYPE, mode, len(content)), io.BytesIO(content))
    return buffer.getvalue()


def archive(image: str, layer: bytes, cmd: list[str], env: list[str], architecture: str) -> bytes:
    """The ``docker save`` archive of the image ``image`` (``name:tag``) made of ``layer`` (a :func:`layer_tar`).

    ``cmd`` is its command, ``env`` its ``NAME=value`` environment, ``architecture`` Docker's
    name for the platform (``amd64``, ``arm64``: Debian's names for these are the same).
    """
    layer_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "created": EPOCH,
            "config": {"Cmd": cmd, "Env": env},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
            "history": [{"created": EPOCH, "created_by": "Playground recipe: one static program"}],
        },
        sort_keys=True,
    ).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [image], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(layer_id, tarfile.DIRTYPE, 0o755, 0))
        for name, content in [(f"{layer_id}/layer.tar", layer), (config_name, config), ("manifest.json", manifest)]:
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content))
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    """A tar header for ``name``: owner 0:0, time 0."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.uid = info.gid = info.mtime = 0
    info.uname = info.gname = "root"
    return info
