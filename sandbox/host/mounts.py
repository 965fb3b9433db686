"""Mounting and unmounting the overlayfs root of a sandbox, through libc directly.

Calling mount(2) through ctypes avoids forking mount(8) on every create and destroy. Image layers
reach a sandbox through idmapped mounts (Linux 5.12+: ``open_tree``, ``mount_setattr``,
``move_mount``, by number on x86_64): a clone of the layer directory whose files, owned on disk
by the image store's range, show as owned by the sandbox's range, with nothing copied or chowned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442  # x86_64
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR_IDMAP = 0x100000
IDMAP_REQUIREMENT = (
    "sandboxes see image layers through idmapped mounts, which need Linux 5.12 or later "
    "(open_tree, mount_setattr, move_mount) and a filesystem that supports them under the image store "
    "(ext4, xfs, btrfs and tmpfs do)"
)

MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
CLONE_NEWNS = 0x20000


class MountError(OSError):
    """mount(2) or umount2(2) failed; the message names the action, the target and the fix."""


class IdmapUnsupported(MountError):
    """This kernel, or the image store's filesystem, cannot make idmapped mounts (see IDMAP_REQUIREMENT)."""


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _idmapped_clone(source: Path, userns_fd: int) -> int:
    """A detached clone of the directory ``source`` (an fd, the caller closes it) whose file owners
    go through the user namespace ``userns_fd``: an owner k on disk shows as the host id that the
    namespace maps its id k to. IdmapUnsupported if the kernel or filesystem cannot; MountError else."""
    fd = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, str(source).encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise IdmapUnsupported(err, f"this kernel has no open_tree(2): {IDMAP_REQUIREMENT}.")
        raise MountError(err, f"Can't clone the mount of {source} ({os.strerror(err)}).")
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    if _libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP):
            raise IdmapUnsupported(
                err, f"Can't make an idmapped mount of {source} ({os.strerror(err)}): {IDMAP_REQUIREMENT}."
            )
        raise MountError(err, f"Can't make an idmapped mount of {source} ({os.strerror(err)}).")
    return int(fd)


def mount_idmapped(source: Path, target: Path, userns_fd: int) -> None:
    """Attach at ``target`` (an empty directory) an idmapped clone of ``source`` (see _idmapped_clone)."""
    fd = _idmapped_clone(source, userns_fd)
    try:
        attach(fd, target, f"the idmapped mount of {source}")
    finally:
        os.close(fd)


def read_only_clone(source: Path) -> int:
    """A detached clone of the mount at ``source`` (a file or directory; an fd, the caller closes it),
    read-only, nosuid, nodev and noexec, to be attached with :func:`attach` (also in another mount
    namespace: the caller may ``setns`` between the two). MountError if it cannot."""
    fd = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, str(source).encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't clone the mount of {source} ({os.strerror(err)}).")
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, 0, 0)
    if _libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise MountError(err, f"Can't make the clone of {source} read-only ({os.strerror(err)}).")
    return int(fd)


def enter_mount_namespace(pid: int) -> None:
    """Move this process (single-threaded: the kernel refuses otherwise) into the mount namespace of
    the host process ``pid``; its root and working directory become that namespace's root."""
    with open(f"/proc/{pid}/ns/mnt") as namespace:
        if _libc.setns(namespace.fileno(), CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            raise MountError(err, f"Can't enter the mount namespace of pid {pid} ({os.strerror(err)}).")


def attach(fd: int, target: Path, what: str) -> None:
    """Attach the detached mount ``fd`` (``what`` it is, for the message) at ``target``."""
    if _libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, str(target).encode(), MOVE_MOUNT_F_EMPTY_PATH) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't attach {what} at {target} ({os.strerror(err)}).")


def check_idmapped_mounts(directory: Path, userns_fd: int) -> None:
    """Make (and drop) an idmapped clone of ``directory``; IdmapUnsupported saying what is missing if
    this kernel or its filesystem cannot."""
    os.close(_idmapped_clone(directory, userns_fd))


def mount_overlay(lower: list[Path], upper: Path, work: Path, target: Path, source: str = "overlay") -> None:
    """Mount an overlayfs at ``target``: ``lower`` read-only (top first), ``upper`` writable.

    ``source`` is free text for overlayfs, shown as the mount's source in mountinfo (a sandbox's
    names the image directory its layers come from, see :mod:`sandbox.images.store`)."""
    options = f"lowerdir={':'.join(str(p) for p in lower)},upperdir={upper},workdir={work}"
    if _libc.mount(source.encode(), str(target).encode(), b"overlay", MS_NODEV, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(
            err,
            f"Can't mount overlayfs on {target} ({os.strerror(err)}); "
            "the agent must run as root on a kernel with overlayfs.",
        )


def mount_tmpfs(target: Path, size_bytes: int, mode: int, inodes: int, owner: int = 0) -> None:
    """Mount a tmpfs of at most ``size_bytes`` and ``inodes`` files at ``target`` (a sandbox's writable
    layer), its root owned by uid and gid ``owner`` (shown as ``uid=`` and ``gid=`` in mountinfo)."""
    options = f"size={size_bytes},nr_inodes={inodes},mode={mode:o},uid={owner},gid={owner}"
    flags = MS_NODEV | MS_NOSUID
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't mount a tmpfs on {target} ({os.strerror(err)}).")


def resize_tmpfs(target: Path, size_bytes: int, inodes: int) -> None:
    """Set the size and file count of the tmpfs mounted at ``target`` (a sandbox's writable layer,
    mounted ahead of time with a small size); its owner and mode stay."""
    options = f"size={size_bytes},nr_inodes={inodes}"
    flags = MS_REMOUNT | MS_NODEV | MS_NOSUID
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't resize the tmpfs on {target} ({os.strerror(err)}).")


def bind(source: Path, target: Path) -> None:
    """Bind-mount ``source`` at ``target`` (an existing file or directory); a namespace's
    ``/proc/<pid>/ns/*`` file bound this way keeps the namespace alive until it is unmounted."""
    if _libc.mount(str(source).encode(), str(target).encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't bind {source} at {target} ({os.strerror(err)}).")


def shared_mount_point(directory: Path, lock: Path) -> bool:
    """Make ``directory`` (made if missing) a mount point of its own, shared, as iproute2's ``ip
    netns add`` makes ``/run/netns`` before it pins a namespace there; True if this call made it.

    Namespaces pinned in a directory that is not yet a mount point end up hidden: the first later
    ``ip netns add`` (any tool's, any agent's) binds the directory onto itself, recursively, and the
    namespaces pinned before stay mounted on the directory beneath, so unpinning them fails with
    EBUSY for good. Making the mount point before the first pin avoids that. The check and the bind
    are done under an exclusive ``flock`` of ``lock``, so two agents starting together bind it once.
    """
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if _libc.mount(b"", str(directory).encode(), b"none", MS_SHARED | MS_REC, None) == 0:
            return False  # a mount point already: now shared too, as ip makes it
        err = ctypes.get_errno()
        if err != errno.EINVAL:
            raise MountError(err, f"Can't make {directory} shared ({os.strerror(err)}).")
        if _libc.mount(str(directory).encode(), str(directory).encode(), b"none", MS_BIND | MS_REC, None) != 0:
            err = ctypes.get_errno()
            raise MountError(err, f"Can't bind {directory} onto itself ({os.strerror(err)}).")
        if _libc.mount(b"", str(directory).encode(), b"none", MS_SHARED | MS_REC, None) != 0:
            err = ctypes.get_errno()
            raise MountError(err, f"Can't make {directory} shared ({os.strerror(err)}).")
        return True


def unmount(target: Path) -> bool:
    """Detach whatever is mounted at ``target``; False if nothing was mounted there."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise MountError(err, f"Can't unmount {target} ({os.strerror(err)}).")


def mounts_under(prefix: Path) -> list[Path]:
    """Mount points at or below ``prefix``, from /proc/self/mountinfo (deepest first)."""
    prefix_str = str(prefix)
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix_str or point.startswith(prefix_str + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)
