"""Image layers from directory trees: a whole tree, or what one tree changes over another.

A layer is a gzip'd tar, the form a Docker schema 2 manifest names
(``application/vnd.docker.image.rootfs.diff.tar.gzip``). :func:`write_layer` makes it from
``upper``; given ``lower`` (the tree of the layers below) it holds only the difference, in the
OCI whiteout form engines apply (image-spec, layer.md, "Representing Changes"):

- a path of ``lower`` gone from ``upper`` is an empty ``.wh.<name>`` beside it;
- a directory of ``upper`` that keeps none of its ``lower`` entries (all deleted, some new)
  carries ``.wh..wh..opq`` ("opaque": hide everything below) and then its new entries;
- a path added, or changed in type, content, mode, owner, link target or device numbers, is
  written whole, after every directory on its way (so the layer applies on any engine);
- a file with several names in the layer is written once, its other names as hard links to it.

Ownership is the files' own numeric uid and gid (the trees are built by root, ids as in the
image), without user or group names. Reproducible: entries in name order, every mtime
:data:`MTIME`, gzip without a name or time, so the same trees always make the same bytes and the
same digests. Sockets are left out (an engine makes its own); extended attributes too.

Imports only the standard library.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

MTIME = 0  # every entry's modification time (1970-01-01), as sandbox.images.dockerarchive writes
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    """A written layer: the gzip'd tar's ``digest`` and ``size`` (what the manifest names) and
    ``diff_id``, the sha256 of the tar before compression (what the configuration names)."""

    digest: str
    size: int
    diff_id: str


def write_layer(upper: Path, destination: Path, lower: Path | None = None) -> Layer:
    """Write the layer of ``upper`` (over ``lower`` when given) to the file ``destination``."""
    with open(destination, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as zipped:
            plain = _Hashing(zipped)
            with tarfile.TarFile(fileobj=cast(BinaryIO, plain), mode="w", format=tarfile.PAX_FORMAT) as tar:
                for info, path in changes(upper, lower):
                    if info.isreg() and info.size:
                        with open(path, "rb") as content:
                            tar.addfile(info, content)
                    else:
                        tar.addfile(info)
    return Layer("sha256:" + compressed.sha256.hexdigest(), compressed.count, "sha256:" + plain.sha256.hexdigest())


def changes(upper: Path, lower: Path | None = None) -> Iterator[tuple[tarfile.TarInfo, Path]]:
    """The tar entries of ``upper``'s layer over ``lower`` (all of ``upper`` if None), with each
    entry's path in ``upper`` (for a regular file's content), in the order they are written."""
    yield from _Differ(upper, lower).walk()


def entry(name: str, st: os.stat_result, link: str = "") -> tarfile.TarInfo | None:
    """The tar header of the file ``name`` whose ``lstat`` is ``st`` (``link``: a symlink's target);
    None for what a layer does not hold (sockets)."""
    info = tarfile.TarInfo(name)
    kind = stat.S_IFMT(st.st_mode)
    types = {
        stat.S_IFREG: tarfile.REGTYPE,
        stat.S_IFDIR: tarfile.DIRTYPE,
        stat.S_IFLNK: tarfile.SYMTYPE,
        stat.S_IFCHR: tarfile.CHRTYPE,
        stat.S_IFBLK: tarfile.BLKTYPE,
        stat.S_IFIFO: tarfile.FIFOTYPE,
    }
    if kind not in types:
        return None
    info.type = types[kind]
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = MTIME
    info.size = st.st_size if kind == stat.S_IFREG else 0
    info.linkname = link
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info


def marker(name: str) -> tarfile.TarInfo:
    """An empty regular file named ``name`` (a whiteout or the opaque marker): root's, mode 0."""
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uname, info.gname = 0, MTIME, "", ""
    return info


class _Differ:
    """One walk of ``upper`` beside ``lower``: directories on the way are written only when
    something under them is (``pending``), each multiply linked file once (``written``)."""

    def __init__(self, upper: Path, lower: Path | None) -> None:
        self.upper, self.lower = upper, lower
        self.pending: list[tuple[tarfile.TarInfo, Path]] = []
        self.written: dict[tuple[int, int], str] = {}

    def walk(self) -> Iterator[tuple[tarfile.TarInfo, Path]]:
        yield from self._directory("", self.lower is not None)

    def _directory(self, rel: str, in_lower: bool) -> Iterator[tuple[tarfile.TarInfo, Path]]:
        """The entries under the directory ``rel`` (``""``: the root) of ``upper``."""
        names = sorted(os.listdir(self.upper / rel))
        below = sorted(os.listdir(self.lower / rel)) if in_lower and self.lower is not None else []
        if below and names and not set(names) & set(below):  # none kept, some new: hide all the lower ones
            yield from self._flush()
            yield marker(_join(rel, OPAQUE)), self.upper
            below = []
        else:
            gone = [name for name in below if name not in set(names)]
            if gone:
                yield from self._flush()
            for name in gone:
                yield marker(_join(rel, WHITEOUT + name)), self.upper
        kept = set(below)
        for name in names:
            yield from self._path(_join(rel, name), name in kept)

    def _path(self, rel: str, in_lower: bool) -> Iterator[tuple[tarfile.TarInfo, Path]]:
        path = self.upper / rel
        st = os.lstat(path)
        info = entry(rel, st, os.readlink(path) if stat.S_ISLNK(st.st_mode) else "")
        if info is None:
            return
        lower_st = os.lstat(self.lower / rel) if in_lower and self.lower is not None else None
        same = lower_st is not None and self._same(path, st, lower_st)
        if info.isdir():
            both_dirs = lower_st is not None and stat.S_ISDIR(lower_st.st_mode)
            if same:
                self.pending.append((info, path))
            else:
                yield from self._flush()
                yield info, path
            yield from self._directory(rel, both_dirs)
            if self.pending and self.pending[-1][1] == path:
                self.pending.pop()
            return
        if same:
            return
        yield from self._flush()
        if info.isreg() and st.st_nlink > 1:
            first = self.written.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        yield info, path

    def _flush(self) -> Iterator[tuple[tarfile.TarInfo, Path]]:
        """The directories on the way to what comes next, not written yet."""
        yield from self.pending
        self.pending.clear()

    def _same(self, path: Path, st: os.stat_result, lower_st: os.stat_result) -> bool:
        """Whether the lower file is what ``path`` is (type, mode, owner, then content, target or device)."""
        if (st.st_mode, st.st_uid, st.st_gid) != (lower_st.st_mode, lower_st.st_uid, lower_st.st_gid):
            return False
        assert self.lower is not None
        other = self.lower / path.relative_to(self.upper)
        if stat.S_ISREG(st.st_mode):
            return st.st_size == lower_st.st_size and (
                (st.st_dev, st.st_ino) == (lower_st.st_dev, lower_st.st_ino) or _same_bytes(path, other)
            )
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(path) == os.readlink(other)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            return st.st_rdev == lower_st.st_rdev
        return True


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as one, open(b, "rb") as two:
        while True:
            left, right = one.read(CHUNK), two.read(CHUNK)
            if left != right:
                return False
            if not left:
                return True


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


class _Hashing:
    """A write-only file that passes bytes on to ``out`` and keeps their sha256 and count."""

    def __init__(self, out: BinaryIO | gzip.GzipFile) -> None:
        self.out, self.sha256, self.count = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.count += len(data)
        self.out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        self.out.flush()
