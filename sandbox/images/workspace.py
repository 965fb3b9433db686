"""Temporary directories for work that must appear whole or not at all (image builds, imports).

A workspace is ``<parent>/.work-<label>-<pid>-<n>/``, locked (``flock``) by the process doing
the work from before it exists until it is gone, through ``<parent>/.locks/<same name>``. The
work is made visible with one ``rename`` (:meth:`Workspace.commit`). A process killed half-way,
even by SIGKILL, leaves its workspace unlocked (the kernel drops the lock with the process), so
:func:`collect` knows it for garbage; a workspace whose owner still runs is never touched.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path
from types import TracebackType

from sandbox.host import mounts

PREFIX = ".work-"
LOCKS = ".locks"


class Workspace:
    """A locked temporary directory under ``parent``; removed on exit unless committed."""

    def __init__(self, parent: Path, label: str) -> None:
        self.parent = parent
        locks = parent / LOCKS
        locks.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{PREFIX}{label}-{os.getpid()}-{time.monotonic_ns()}"
        self.path = parent / name
        self._lock_path = locks / name
        self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.path.mkdir(mode=0o700)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def commit(self, source: Path, final: Path) -> None:
        """Make ``source`` (inside the workspace) visible as ``final`` with one rename.

        Raises FileExistsError when ``final`` exists (a non-empty directory cannot be replaced).
        """
        try:
            os.rename(source, final)
        except OSError as exc:
            if final.exists():
                raise FileExistsError(f"{final} already exists") from exc
            raise

    def close(self) -> None:
        """Remove what is left of the workspace, then release its lock."""
        if self._lock < 0:
            return
        remove_tree(self.path)
        self._lock_path.unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = -1


def collect(parent: Path) -> list[Path]:
    """Remove the workspaces under ``parent`` whose owner is gone; returns what was removed.

    Safe at any time, from any process: a workspace whose lock is held is left alone.
    """
    removed: list[Path] = []
    locks = parent / LOCKS
    if not parent.is_dir():
        return removed
    for path in sorted(parent.glob(PREFIX + "*")):
        lock_path = locks / path.name
        try:
            locks.mkdir(exist_ok=True, mode=0o700)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its owner is still at work
        try:
            remove_tree(path)
            lock_path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    for lock_path in locks.glob(PREFIX + "*") if locks.is_dir() else ():
        if not (parent / lock_path.name).exists():
            _remove_stale_lock(lock_path)
    return removed


STALE_LOCK_AGE = 60.0  # seconds; younger lock files may belong to a workspace about to be made


def _remove_stale_lock(lock_path: Path) -> None:
    """A lock whose workspace is gone: its owner died between rmtree and unlink, or is about to mkdir."""
    try:
        if time.time() - lock_path.stat().st_mtime < STALE_LOCK_AGE:
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock_path.unlink(missing_ok=True)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything below it, detaching any mount below it first.

    A tree with a mount still inside (a bind of /dev or /proc left by a killed build) is never
    walked into: that would delete the mounted files, not the tree's own.
    """
    for point in mounts.mounts_under(path):
        mounts.unmount(point)
    if left := mounts.mounts_under(path):
        raise OSError(f"cannot remove {path}: {', '.join(map(str, left))} is still mounted there")
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() or path.is_symlink():
        raise OSError(f"could not remove {path} entirely; remove it by hand (as root)")
