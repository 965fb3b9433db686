"""One host id range per sandbox: which ranges are taken, which one to hand out next, and the user
namespaces that shift image layers into a range (see :mod:`sandbox.wire.ids` for the layout).

The kernel is the allocator's record, as nft's address set is for addresses: a sandbox's writable
layer is a tmpfs mounted at ``<sandbox dir>/layer`` whose root belongs to its range's first id,
and mountinfo shows it (``uid=``). A range is taken for as long as such a tmpfs is mounted: from
when the network pool prepares a place for a sandbox (the range, its namespaces and its network,
in a directory that becomes the sandbox's) until after the sandbox's last process is gone and its
mounts are removed. So an agent restart, adoption and reconciliation need no other bookkeeping, and a range
is reused only once its sandbox's layer is unmounted. Claiming (reading mountinfo, then mounting
the tmpfs) must not yield to another claim in between; the agent does both in one step of its
event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

from sandbox.host import mounts
from sandbox.wire.ids import USERNS_SIZE, range_index, range_start

LAYER = "layer"  # a sandbox's writable layer, the tmpfs that records its range
USERNS_TIMEOUT = 5.0  # seconds for unshare(1) to enter its new user namespace
# A layer claimed ahead of its sandbox (by the pool) is this small until the sandbox's quotas are
# known and it is resized (:func:`sandbox.host.mounts.resize_tmpfs`).
CLAIM_BYTES = 1024 * 1024
# Claims of every agent on the host with the same id base take this lock (flock) around reading
# the ranges taken and mounting the record: one agent per host is the rule, but test stacks (and
# an operator's second Playground) run several, and two could otherwise take one range.
CLAIM_LOCK = Path("/run/playground-idranges-{base}.lock")
CLAIM_INODES = 64


class RangesExhausted(Exception):
    """Every range of the pool is held by a sandbox; the message says what to change."""


def layer_owners(mountinfo: str, base: int) -> dict[Path, int]:
    """Each tmpfs mounted at a ``.../layer`` directory whose root's owner starts a range of ``base``'s
    pool, by mount point, with that first id (the ranges taken, in mountinfo's text)."""
    found = {}
    for line in mountinfo.splitlines():
        mount, sep, filesystem = line.partition(" - ")
        fields, fs_fields = mount.split(), filesystem.split()
        if not sep or len(fields) < 5 or len(fs_fields) < 3 or fs_fields[0] != "tmpfs":
            continue
        point = Path(fields[4].encode().decode("unicode_escape"))
        if point.name != LAYER:
            continue
        owner = next((o[4:] for o in fs_fields[2].split(",") if o.startswith("uid=")), "")
        if owner.isdigit() and range_index(base, int(owner)) is not None:
            found[point] = int(owner)
    return found


def taken(base: int) -> dict[Path, int]:
    """The ranges of ``base``'s pool taken on this host now (:func:`layer_owners` of our mountinfo).

    Host-wide: a sandbox of another agent with the same base (a second test stack, say) holds its
    range too, so no two sandboxes on the host share one."""
    with open("/proc/self/mountinfo") as info:
        return layer_owners(info.read(), base)


def next_free(count: int, used: Collection[int], cursor: int) -> int:
    """The first range index after ``cursor`` (wrapping round) below ``count`` and not in ``used``:
    next-fit, so a range given back is handed out again as late as possible."""
    for step in range(count):
        candidate = (cursor + 1 + step) % count
        if candidate not in used:
            return candidate
    raise RangesExhausted(
        f"all {count} id ranges (PLAYGROUND_SANDBOX_RANGES) are held by sandboxes; "
        "raise PLAYGROUND_SANDBOX_RANGES or wait for sandboxes to end"
    )


def userns_with_map(inside: int, outside: int, size: int = USERNS_SIZE) -> int:
    """An fd of a new user namespace (held by nothing else) mapping uids and gids ``inside`` ..
    ``inside + size - 1`` to host ids from ``outside``: what an idmapped mount needs.

    A child made by unshare(1) enters it, host root writes its maps, the fd is opened and the
    child ends. OSError if that fails."""
    child = subprocess.Popen(
        ["unshare", "--user", "--", "cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True
    )
    try:
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + USERNS_TIMEOUT
        while os.readlink(f"/proc/{child.pid}/ns/user") == own:
            if child.poll() is not None or time.monotonic() > deadline:
                raise OSError(f"unshare --user did not make a user namespace (exit status {child.returncode})")
            time.sleep(0.001)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{child.pid}/{name}", "w") as out:
                out.write(f"{inside} {outside} {size}\n")
        return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        with contextlib.suppress(OSError):
            assert child.stdin is not None
            child.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(USERNS_TIMEOUT)
        if child.returncode is None:
            child.kill()
            child.wait()


class Ranges:
    """Hands out the ``count`` ranges above ``base``'s own, one per sandbox directory."""

    def __init__(self, base: int, count: int) -> None:
        self.base = base
        self.count = count
        self._cursor = -1  # the range index handed out last (next-fit)

    def claim(self, directory: Path) -> int:
        """Take the next free range and mount ``directory/layer``, a small tmpfs owned by its first id,
        which records it (until unmounted); returns that id. RangesExhausted if none is free.

        No await in here: reading the ranges taken and mounting the record are one step of the
        event loop, so two claims of this agent never take the same range; and they are done under
        CLAIM_LOCK, held for that step (a millisecond), so neither do two agents' claims."""
        with open(str(CLAIM_LOCK).format(base=self.base), "ab") as lock:  # made if missing
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = {range_index(self.base, ids) for ids in taken(self.base).values()}
            index = next_free(self.count, {i for i in used if i is not None}, self._cursor)
            ids = range_start(self.base, index)
            layer = directory / LAYER
            layer.mkdir()
            mounts.mount_tmpfs(layer, CLAIM_BYTES, 0o711, CLAIM_INODES, ids)
        self._cursor = index
        return ids
