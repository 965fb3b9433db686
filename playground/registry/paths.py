"""Where the registry keeps its data, under PLAYGROUND_DATA_DIR."""

from __future__ import annotations

from pathlib import Path


def mirror_root(data_dir: Path) -> Path:
    """The mirror's storage: a Distribution filesystem root (``docker/registry/v2/...``). The mirror
    serves it; ``manage.py registry seed`` and ``import`` write to it through a writable registry
    of their own on the same root."""
    return data_dir / "registry" / "mirror"


def push_root(data_dir: Path) -> Path:
    """The sessions' push registry's storage: a Distribution filesystem root of its own, written by
    its docker-registry and tidied by the front (ended sessions' namespaces, unlinked blobs)."""
    return data_dir / "registry" / "push"


# Inside a storage root, Distribution's filesystem driver's layout.


def storage(root: Path) -> Path:
    """The top of the driver's files under the storage ``root``."""
    return root / "docker" / "registry" / "v2"


def _split(digest: str) -> tuple[str, str]:
    """``sha256:<hex>`` as (algorithm, hex); a bare hex is taken as sha256."""
    algorithm, _, hexdigest = digest.rpartition(":")
    return algorithm or "sha256", hexdigest


def blob_path(root: Path, digest: str) -> Path:
    """Where the storage under ``root`` keeps the blob ``digest`` (which may not exist)."""
    algorithm, hexdigest = _split(digest)
    return storage(root) / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data"


def layer_link_path(root: Path, repository: str, digest: str) -> Path:
    """The file whose presence makes the blob ``digest`` part of ``repository`` for the store."""
    algorithm, hexdigest = _split(digest)
    return storage(root) / "repositories" / repository / "_layers" / algorithm / hexdigest / "link"


def hosts_authority(data_dir: Path) -> Path:
    """A sandbox host's copy of the hosts' authority's certificate (its PLAYGROUND_TLS_DIR's
    ``ca.crt``, which is root's alone there), readable by its registry front, which checks the web
    host's registry certificate with it (docs/hosts.md)."""
    return data_dir / "registry" / "hosts-ca.crt"
