"""Which sandboxes use an image: read from the host's mount table, the kernel's record of it.

A sandbox's root is an overlayfs whose mount source is :func:`mount_source` of the image's
directory (its lower layers are idmapped views of the image's layers under the sandbox's own
directory, see :mod:`sandbox.runtime.layers`); a sandbox started by an agent older than
per-sandbox id ranges has the image's layer directories themselves as lower layers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def mount_source(directory: Path) -> str:
    """The source of a sandbox's overlayfs of the image in ``directory`` (which ``df`` inside shows
    instead of a host path): its name and a digest of the directory, which :func:`mounted_below` looks for."""
    return f"{directory.name}@{hashlib.sha256(str(directory).encode()).hexdigest()[:8]}"


def mounted_below(directory: Path) -> list[str]:
    """Runtime ids of the sandboxes with an overlayfs of the image in ``directory``: with its
    ``mount_source`` (its layers are idmapped views), or lower layers under it (an older agent's)."""
    prefix, tag = f"{directory}/", mount_source(directory)
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split(" - ", 1)
            if len(fields) != 2 or not fields[1].startswith("overlay "):
                continue
            _type, source, options = fields[1].split(" ", 2)
            lower = next((o[9:] for o in options.split(",") if o.startswith("lowerdir=")), "")
            if source == tag or any(d.startswith(prefix) for d in lower.split(":")):
                point = Path(fields[0].split()[4])
                found.append(point.parent.name if point.name == "rootfs" else str(point))
    return sorted(found)
