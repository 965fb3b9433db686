"""The user and network namespaces of one sandbox, owned by the sandbox's own host uid.

A user namespace belongs to the uid that created it (``ioctl(NS_GET_OWNER_UID)``), and the kernel
charges what processes inside it allocate to that owner's per-user counters in the parent
namespace too: inotify instances and watches, POSIX message-queue bytes, pending signals and POSIX
timers. A namespace created by root would charge root, so one sandbox could use up host root's
share. So each sandbox's user namespace is created by a process running as the first id of the
sandbox's range (root inside), and its network namespace is created inside that user namespace,
so root inside has ``CAP_NET_ADMIN`` over its own network and no other.

How (:func:`make_owned`): ``prlimit`` sets the creator's RLIMIT_MSGQUEUE and RLIMIT_SIGPENDING
(the kernel records them in the new namespace as the bounds of everything inside it), ``setpriv``
drops to the range's uid with no groups, ``unshare --user --net`` makes both namespaces and runs
a shell; host root writes its maps (ids 0-65535 inside to the range; ``setgroups`` stays allowed,
so ``su`` and apt work inside) and pins both namespaces by bind-mounting their ``/proc/<pid>/ns``
files; the shell, now root inside, writes the namespace's limits in ``/proc/sys/user`` and exits.
runc then joins both by path. The same bind mounts pin the user namespaces that shift image
layers into a range (:func:`pin_idmap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from sandbox.host import mounts
from sandbox.host.idranges import userns_with_map
from sandbox.wire.ids import USERNS_SIZE

STEP_TIMEOUT = 5.0  # seconds for each step of the helper process


class NamespaceError(OSError):
    """Making or pinning a sandbox's namespaces failed; the message says which step and why."""


@dataclass(frozen=True)
class UserLimits:
    """The bounds of one sandbox's user namespace on objects the kernel counts per user: message-queue
    bytes and pending signals for the whole sandbox; inotify for each uid inside (the whole sandbox
    is held to the host's per-user inotify limits for the namespace's owner, its own uid)."""

    inotify_instances: int
    inotify_watches: int
    mqueue_bytes: int  # POSIX message queues (RLIMIT_MSGQUEUE)
    sigpending: int  # queued signals and POSIX timers (RLIMIT_SIGPENDING)

    def sysctls(self) -> dict[str, int]:
        """The limits written in the namespace's ``/proc/sys/user`` (no user namespace inside it)."""
        return {
            "max_user_namespaces": 0,
            "max_inotify_instances": self.inotify_instances,
            "max_inotify_watches": self.inotify_watches,
        }


def _helper_command(uid: int, limits: UserLimits) -> list[str]:
    writes = "; ".join(f"echo {value} > /proc/sys/user/{name}" for name, value in limits.sysctls().items())
    # The outer shell starts before its maps exist, so it has no capability left after exec; the
    # inner one, executed once host root has written them, is root inside with all of them.
    outer = 'echo ready; read go; exec sh -ec "$0"'
    inner = f"{writes}; echo ok; read done"
    return [
        "prlimit",
        f"--msgqueue={limits.mqueue_bytes}",
        f"--sigpending={limits.sigpending}",
        "--",
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--",
        "unshare",
        "--user",
        "--net",
        "--",
        "sh",
        "-ec",
        outer,
        inner,
    ]


async def make_owned(uid: int, user_pin: Path, net_pin: Path, limits: UserLimits) -> None:
    """Make a user namespace owned by host ``uid`` (ids 0-65535 inside map to ``uid`` ..), bounded by
    ``limits``, and a network namespace owned by it (loopback only, down); pin them at the files
    ``user_pin`` and ``net_pin`` (made here; unmounting them lets the namespaces go once unused).

    Must run as root. NamespaceError if a step fails; nothing stays pinned then."""
    proc = await asyncio.create_subprocess_exec(
        *_helper_command(uid, limits),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _expect(proc, b"ready", "entering the new namespaces")
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{proc.pid}/{name}").write_text(f"0 {uid} {USERNS_SIZE}\n")
        _pin(Path(f"/proc/{proc.pid}/ns/user"), user_pin)
        _pin(Path(f"/proc/{proc.pid}/ns/net"), net_pin)
        proc.stdin.write(b"go\n")
        await _expect(proc, b"ok", "setting the namespace's limits")
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), STEP_TIMEOUT)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        for pin in (user_pin, net_pin):
            unpin(pin)
        if isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, NamespaceError):
            raise NamespaceError(f"cannot make the namespaces of uid {uid}: {exc}") from None
        raise


async def _expect(proc: asyncio.subprocess.Process, word: bytes, step: str) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    line = await asyncio.wait_for(proc.stdout.readline(), STEP_TIMEOUT)
    if line.strip() != word:
        errors = (await asyncio.wait_for(proc.stderr.read(4096), STEP_TIMEOUT)).decode(errors="replace").strip()
        raise NamespaceError(f"the namespace helper failed {step}: {errors or 'it ended without a word'}")


def pin_idmap(inside: int, outside: int, pin: Path) -> None:
    """Pin at ``pin`` a new user namespace that maps ``inside`` .. to ``outside`` .. (USERNS_SIZE
    ids): what an idmapped mount of image layers into a sandbox's range needs (about 5 ms)."""
    fd = userns_with_map(inside, outside)
    try:
        _pin(Path(f"/proc/self/fd/{fd}"), pin)
    finally:
        os.close(fd)


def _pin(namespace: Path, pin: Path) -> None:
    pin.touch(mode=0o600, exist_ok=False)
    try:
        mounts.bind(namespace, pin)
    except OSError:
        pin.unlink(missing_ok=True)
        raise


def unpin(pin: Path) -> None:
    """Undo a pin (its namespace goes once nothing else holds it); nothing if there is none."""
    mounts.unmount(pin)
    pin.unlink(missing_ok=True)
