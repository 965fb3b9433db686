"""A sandbox's root filesystem on the host: its writable layer (a tmpfs owned by the sandbox's id
range, which is also the record that the range is taken, mounted when the range is claimed: see
:mod:`sandbox.host.idranges`), the /etc files bound from it, and the overlayfs of the image's
layers seen through idmapped mounts.

Layout under the sandbox's directory: ``layer/`` (the tmpfs: ``upper``, ``work``, ``etc``),
``lower/<n>`` (where the idmapped views of the image's layers are attached while the overlay is
mounted, then detached: overlayfs keeps private clones of its layers) and ``rootfs`` (the overlay,
whose mount source is the image's ``mount_source``, so the image store knows its users).
Everything the agent writes here belongs to the sandbox's range; the image stays as stored.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from sandbox.host import mounts
from sandbox.host.idranges import LAYER

ETC_FILES = ("hostname", "hosts", "resolv.conf")
HOSTS_LIMIT = 64 * 1024  # bytes: far more than the hosts file of a group of nodes needs


class Image(Protocol):
    """The image a sandbox starts from (a :class:`sandbox.images.store.Image`)."""

    @property
    def mount_source(self) -> str:
        """What names it as the source of a sandbox's overlayfs (see ImageStore.users)."""
        ...

    def lower_dirs(self) -> list[Path]:
        """Its layers in overlayfs ``lowerdir`` order (top first)."""
        ...


def write_layer(
    layer: Path, hostname: str, address: str, resolv_conf: str, owner: int, extra_hosts: Iterable[tuple[str, str]] = ()
) -> dict[str, Path]:
    """Make ``upper``, ``work``, ``etc`` and ``docker`` (the docker profile's /var/lib/docker,
    unused by others) in the layer and write /etc/hostname, hosts and resolv.conf there (so writing
    them counts against the sandbox's disk quota, not the host's disk), all owned by ``owner`` (root
    inside); returns the files to bind, by their path inside."""
    upper, work, etc = layer / "upper", layer / "work", layer / "etc"
    for path in (upper, work, etc):
        path.mkdir()
    docker_data(layer).mkdir(mode=0o711)
    os.chown(docker_data(layer), owner, owner)
    (etc / "hostname").write_text(hostname + "\n")
    (etc / "hosts").write_text(hosts_text([(address, hostname)], extra_hosts))
    (etc / "resolv.conf").write_text(resolv_conf)
    files = {f"/etc/{name}": etc / name for name in ETC_FILES}
    for path in (upper, work, etc, *files.values()):
        os.chown(path, owner, owner)
    return files


REGISTRY_HOST = "registry"  # the gateway's name: the sessions' push registry (docs/registry.md, Pushing)


def hosts_text(names: Iterable[tuple[str, str]], extra: Iterable[tuple[str, str]] = ()) -> str:
    """The /etc/hosts of a sandbox: localhost, each (address, name) of ``extra`` (the gateway as
    ``registry``), then each (address, hostname) of ``names`` (itself, and the other members of its
    group) in the order given."""
    lines = [*extra, *names]
    return "127.0.0.1\tlocalhost\n::1\tlocalhost\n" + "".join(f"{a}\t{h}\n" for a, h in lines)


def rewrite_hosts(layer: Path, text: str) -> None:
    """Replace the content of the sandbox's /etc/hosts (``layer/etc/hosts``, bound into the
    sandbox) with ``text``, in place: the same inode, which the bind mount shows.

    The file belongs to root inside, who may write it but cannot reach the directory holding it:
    the file is opened without following a symbolic link and written only if it is a regular
    file, so nothing inside can turn the agent's write elsewhere. OSError (ValueError if ``text``
    is over HOSTS_LIMIT) if it cannot be written."""
    data = text.encode()
    if len(data) > HOSTS_LIMIT:
        raise ValueError(f"a hosts file of {len(data)} bytes is over the {HOSTS_LIMIT} bytes allowed")
    directory = os.open(layer / "etc", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open("hosts", os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{layer / 'etc' / 'hosts'} is not a regular file")
        # New content over the old, then the old tail cut: a reader never sees an empty file.
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def docker_data(layer: Path) -> Path:
    """The directory of the writable layer bound at /var/lib/docker in a docker-profile sandbox."""
    return layer / "docker"


def mount_root(directory: Path, image: Image, userns_fd: int) -> Path:
    """Mount the sandbox's root at ``directory/rootfs``: the image's layers, each seen through an
    idmapped mount with the user namespace ``userns_fd`` (the image store's range onto the
    sandbox's), as read-only lower layers over ``layer/upper``. The views are detached once the
    overlay holds them; a failure leaves what was attached to the sandbox's destroy."""
    rootfs, views = directory / "rootfs", directory / "lower"
    rootfs.mkdir(exist_ok=True)
    views.mkdir(exist_ok=True)
    lower = []
    for number, layer in enumerate(image.lower_dirs()):
        view = views / str(number)
        view.mkdir()
        mounts.mount_idmapped(layer, view, userns_fd)
        lower.append(view)
    layer = directory / LAYER
    mounts.mount_overlay(lower, layer / "upper", layer / "work", rootfs, source=image.mount_source)
    for view in lower:
        mounts.unmount(view)
    return rootfs
