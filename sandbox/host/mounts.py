"""Mounting and unmounting the overlayfs root of a sandbox, through libc directly.

Calling mount(2) through ctypes avoids forking mount(8) on every create and destroy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2


class MountError(OSError):
    """mount(2) or umount2(2) failed; the message names the action, the target and the fix."""


def mount_overlay(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlayfs at ``target``: ``lower`` read-only (top first), ``upper`` writable."""
    options = f"lowerdir={':'.join(str(p) for p in lower)},upperdir={upper},workdir={work}"
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", MS_NODEV, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(
            err,
            f"Can't mount overlayfs on {target} ({os.strerror(err)}); "
            "the agent must run as root on a kernel with overlayfs.",
        )


def mount_tmpfs(target: Path, size_bytes: int, mode: int, inodes: int) -> None:
    """Mount a tmpfs of at most ``size_bytes`` and ``inodes`` files at ``target`` (a sandbox's writable layer)."""
    options = f"size={size_bytes},nr_inodes={inodes},mode={mode:o}"
    flags = MS_NODEV | MS_NOSUID
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"Can't mount a tmpfs on {target} ({os.strerror(err)}).")


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
