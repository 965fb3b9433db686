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
