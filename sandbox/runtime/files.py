"""Files in and out of a live sandbox (the agent's ``put_file`` and ``get_file`` ops).

Both are a ``runc exec`` of a short ``/bin/sh`` script as root inside the sandbox, with the
sandbox's own namespaces, id range, seccomp filter, capabilities and quotas, in a sub-cgroup of
its own (as lab scripts, :mod:`sandbox.runtime.labscripts`), so every path is resolved by the
sandbox's kernel view: a symlink, a mount, ``..`` or ``/proc/1/root`` leads somewhere inside
the sandbox's own root, never to the host's. The agent never opens a path of the sandbox itself.

The bytes move by file descriptor, never through the agent's JSON:

- upload: the script's standard input is a pipe whose write end the caller gets; the script
  writes it to a new file beside the target, checks its length against the size announced, and
  renames it onto the target (a symlink at the target is replaced, not followed). A short write
  (``ENOSPC``: the sandbox's layer is a size-limited tmpfs) removes the new file: no partial file.
- download: the script copies at most ``limit + 1`` bytes of a regular file to its standard
  output, which the agent reads from a pipe into a memfd, at most ``limit + 1`` bytes whatever the
  sandbox's programs do; the memfd goes to the caller.

A relative path is resolved against the current directory of ``pid`` (a process inside, named by
its pid in the sandbox's pid namespace: the foreground process of a terminal), or ``/root``.
Every transfer ends within its deadline, its processes killed with its cgroup.

Concurrency is bounded per sandbox (``PER_SANDBOX``: a third transfer of one sandbox is refused at
once, ``busy``) and per agent (``PER_AGENT``), as lab scripts are (:meth:`CommandRunner.run`): a
transfer over the agent's bound waits its turn, in arrival order, up to ``HOST_WAIT`` seconds, and
is refused ``host_busy`` only after that. A waiting transfer counts towards its sandbox's bound,
and holds nothing else: no pipe, no memfd, no process, and an upload's caller has not yet been told
to send (see :meth:`FileMover.put`). Its deadline (``PUT_TIMEOUT``, ``GET_TIMEOUT``) starts once its
turn came; the client's timeouts allow for the wait (:mod:`sandbox.wire.client`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.runtime.labscripts import CommandRunner, end_runc, end_subgroup, make_subgroup, read_into
from sandbox.runtime.turns import Turns
from sandbox.wire.protocol import AgentError

PUT_TIMEOUT = 120.0  # seconds for an upload of the largest size, the caller's writing included
GET_TIMEOUT = 60.0
PER_SANDBOX = 2
PER_AGENT = 8
HOST_WAIT = 30.0  # seconds a transfer over PER_AGENT waits for its turn before being refused
STDERR_LIMIT = 4096  # bytes of the script's messages kept
CHUNK = 65536  # bytes of the script's messages read at once

# Resolves "$1" (absolute, or relative to the cwd of pid "$2", else /root) into $dir and $base;
# exit 12: no file name; 11: its directory does not exist.
RESOLVE = r"""
p=$1
case $p in
/*) ;;
*) d=
   [ -n "$2" ] && d=$(cd "/proc/$2/cwd" 2>/dev/null && pwd -P)
   p=${d:-/root}/$p ;;
esac
base=${p##*/}
case $base in ""|.|..) echo "$p does not name a file" >&2; exit 12 ;; esac
parent=${p%/*}
dir=$(cd "${parent:-/}" 2>/dev/null && pwd -P) || { echo "${parent:-/}" >&2; exit 11; }
t=${dir%/}/$base
"""

# "$3": a random token for the new file's name; "$4": the size announced. Exit 10: the target is
# a directory; 13: the write failed (stderr says why); 14: fewer bytes came than announced. A
# target that cannot be renamed over (a mount point, such as /etc/hosts) is written in place.
PUT_SCRIPT = (
    RESOLVE
    + r"""
[ -d "$t" ] && { echo "$t" >&2; exit 10; }
new=${dir%/}/.$base.upload-$3
set -C
cat > "$new" || { rm -f "$new"; exit 13; }
n=$(wc -c < "$new")
[ $n -eq $4 ] || { rm -f "$new"; echo "$n" >&2; exit 14; }
mv -f "$new" "$t" 2>/dev/null || { cat "$new" >| "$t" && rm -f "$new"; } || { rm -f "$new"; exit 13; }
echo "$t" >&2
"""
)

# "$3": the most bytes to copy. Exit 10: a directory; 11: missing; 15: not a regular file.
GET_SCRIPT = (
    RESOLVE
    + r"""
[ -d "$t" ] && { echo "$t" >&2; exit 10; }
[ -e "$t" ] || { echo "$t" >&2; exit 11; }
[ -f "$t" ] || { echo "$t" >&2; exit 15; }
head -c "$3" < "$t" || exit 13
echo "$t" >&2
"""
)

# "$1": an absolute directory. Its tree as a tar on standard output (paths "./..."; symlinks as
# links, modes, owners and times as the sandbox sees them; sockets skipped), which the agent cuts
# at its limit. Exit 11: no such directory; 16: no tar in the image; 13: tar failed (GNU tar's 1,
# a file that changed while it was read, is not a failure).
TREE_SCRIPT = r"""
cd "$1" 2>/dev/null || { echo "$1" >&2; exit 11; }
command -v tar >/dev/null 2>&1 || { echo "$1" >&2; exit 16; }
tar -cf - .
[ $? -le 1 ] || { echo "$1" >&2; exit 13; }
pwd -P >&2
"""

DISK_FULL = ("No space left on device", "Disk quota exceeded")


@dataclass(frozen=True)
class Transfer:
    """How a script ended: its exit status (None when cut off at the deadline) and the last line
    of its messages (the absolute path on success)."""

    code: int | None
    message: str


class FileMover:
    """Moves files in and out of the sandboxes that ``commands`` runs scripts in (same runc root,
    bundles and cgroups), bounded per sandbox and per agent (see the module's doc)."""

    def __init__(
        self,
        commands: CommandRunner,
        per_sandbox: int = PER_SANDBOX,
        per_agent: int = PER_AGENT,
        host_wait: float = HOST_WAIT,
    ) -> None:
        self.commands = commands
        self.turns = Turns(
            per_sandbox,
            per_agent,
            host_wait,
            busy="this sandbox already moves {n} files; try again when they end",
            host_busy="this host has been moving {n} files at once for {wait} s; try again in a moment",
        )

    async def put(self, runtime_id: str, path: str, pid: int | None, size: int, hand_over: Any) -> dict[str, Any]:
        """Write ``size`` bytes to ``path`` in the sandbox: ``hand_over(fd)`` is called with the
        write end of the script's standard input (it must send it on and return; the caller
        writes and closes it). ``{"path": absolute path, "size": size}``, or AgentError
        ``is_directory``, ``no_such_file`` (no such directory), ``bad_path``, ``disk_full``,
        ``incomplete`` (fewer bytes came than announced) or ``timeout``; ``busy`` or ``host_busy``
        (see :class:`~sandbox.runtime.turns.Turns`).

        The slot, the turn included, is taken before the pipe is made and ``hand_over`` called: a
        waiting upload has not been told to send, so no byte of it is read meanwhile (the caller
        still holds them all: the web tier has spooled the body to a file before asking), none is
        buffered in the agent or a pipe, and a refusal after the wait (``host_busy``) comes instead
        of the pipe, as ``busy`` does; the caller has lost nothing and may send it all again.
        ``PUT_TIMEOUT`` starts once the turn came, so the wait never eats into the caller's time to
        write."""
        async with self.turns.slot(runtime_id):
            read_end, write_end = os.pipe()
            try:
                hand_over(write_end)
            finally:
                os.close(write_end)
            args = [path, str(pid or ""), secrets.token_hex(6), str(size)]
            try:
                result = await self._exec(runtime_id, PUT_SCRIPT, args, read_end, None, PUT_TIMEOUT)
            finally:
                os.close(read_end)
        if result.code == 14:
            raise AgentError("incomplete", f"only {result.message} of the {size} bytes announced came; nothing written")
        if result.code == 13 and any(words in result.message for words in DISK_FULL):
            raise AgentError("disk_full", f"the sandbox's disk is full ({result.message}); nothing was written")
        _refuse(result, "write")
        return {"path": result.message, "size": size}

    async def get(self, runtime_id: str, path: str, pid: int | None, limit: int) -> tuple[dict[str, Any], int]:
        """The regular file ``path`` of the sandbox, at most ``limit`` bytes: ``({"path", "size"},
        memfd)`` (the caller owns the memfd, at offset 0), or AgentError ``is_directory``,
        ``no_such_file``, ``bad_path`` (not a regular file, unreadable), ``too_large`` or ``timeout``;
        ``busy`` or ``host_busy`` (see :class:`~sandbox.runtime.turns.Turns`)."""

        def check(size: int, result: Transfer) -> None:
            if size > limit:
                raise AgentError("too_large", f"the file is larger than the limit of {limit} bytes")
            _refuse(result, "read")

        return await self._into_memfd(runtime_id, GET_SCRIPT, [path, str(pid or ""), str(limit + 1)], limit, check)

    async def get_tree(self, runtime_id: str, directory: str, limit: int) -> tuple[dict[str, Any], int]:
        """The absolute ``directory`` of the sandbox and all below it as a tar of at most ``limit``
        bytes (``TREE_SCRIPT``): ``({"path", "size"}, memfd)`` as :meth:`get`, or AgentError
        ``no_such_file``, ``bad_path`` (no tar in the image, tar failed), ``too_large`` or ``timeout``;
        ``busy`` or ``host_busy`` (see :class:`~sandbox.runtime.turns.Turns`)."""

        def check(size: int, result: Transfer) -> None:
            if size > limit:
                raise AgentError("too_large", f"the tar of {directory} is larger than the limit of {limit} bytes")
            if result.code == 16:
                raise AgentError("bad_path", "this sandbox's image has no tar to pack the directory with")
            _refuse(result, "pack")

        return await self._into_memfd(runtime_id, TREE_SCRIPT, [directory], limit, check)

    async def _into_memfd(
        self, runtime_id: str, script: str, args: list[str], limit: int, check: Callable[[int, Transfer], None]
    ) -> tuple[dict[str, Any], int]:
        """Run ``script`` in one of the sandbox's slots, at most ``limit + 1`` bytes of its standard
        output into a new memfd; ``check(size, result)`` raises the refusal of a bad run. ``({"path":
        the script's last message, "size"}, memfd)``, the memfd at offset 0 (the caller's to close).
        The memfd is made once the turn came: a waiting download holds none."""
        async with self.turns.slot(runtime_id):
            memfd = os.memfd_create("pg-download", os.MFD_CLOEXEC)
            try:
                size, result = await self._copy_out(runtime_id, script, args, limit, memfd)
                check(size, result)
                os.lseek(memfd, 0, os.SEEK_SET)
                return {"path": result.message, "size": size}, memfd
            except BaseException:
                os.close(memfd)
                raise

    async def _copy_out(
        self, runtime_id: str, script: str, args: list[str], limit: int, memfd: int
    ) -> tuple[int, Transfer]:
        """Run ``script``, copying at most ``limit + 1`` bytes of its standard output to ``memfd``."""
        read_end, write_end = os.pipe()
        copied = asyncio.create_task(read_into(read_end, limit + 1, functools.partial(os.write, memfd)))
        result = await self._exec(runtime_id, script, args, None, write_end, GET_TIMEOUT, (copied, limit + 1))
        return await copied, result

    async def _exec(
        self,
        runtime_id: str,
        script: str,
        args: list[str],
        stdin: int | None,
        stdout: int | None,
        timeout: float,
        reader: tuple[asyncio.Task[int], int] | None = None,
    ) -> Transfer:
        """Run ``script`` with ``args`` in the sandbox, in a cgroup of its own that is emptied and
        removed at the end, within ``timeout`` seconds (AgentError ``timeout`` after). ``stdout``
        is closed here. ``reader``: the task copying ``stdout``'s other end and the most bytes it
        copies; once it has copied that many the run ends (``Transfer(0, "")``: the caller sees the size)."""
        commands = self.commands
        try:
            name = f"file-{secrets.token_hex(6)}"
            command = commands.exec_command(runtime_id, name)
            dirs = make_subgroup(commands.cgroup_parent, runtime_id, name)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    runtime_id,
                    "/bin/sh",
                    "-c",
                    script,
                    "sh",
                    *args,
                    stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
                    stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            except BaseException:
                await end_subgroup(dirs)
                raise
        finally:
            if stdout is not None:
                os.close(stdout)  # the reader sees the end once runc is gone
        messages = asyncio.create_task(_read_messages(proc))
        try:
            over = await _wait(messages, reader, timeout)
        finally:
            await end_subgroup(dirs, remove=False)
            await end_runc(proc)
            if not messages.done():
                messages.cancel()
            await end_subgroup(dirs)
        if over:
            return Transfer(0, "")
        if not messages.done() or messages.cancelled():
            raise AgentError("timeout", f"moving the file took more than {timeout:.0f} seconds; it was stopped")
        lines = messages.result().decode("utf-8", errors="replace").strip().splitlines()
        return Transfer(proc.returncode, lines[-1] if lines else "")


async def _wait(messages: asyncio.Task[bytes], reader: tuple[asyncio.Task[int], int] | None, timeout: float) -> bool:
    """Wait until the script ends (False), its output reaches the reader's most (True) or the
    deadline passes (False, ``messages`` not done)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending: set[asyncio.Task[Any]] = {messages} | ({reader[0]} if reader else set())
    while not messages.done():
        done, pending = await asyncio.wait(
            pending, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            return False
        if reader and reader[0] in done and reader[0].result() >= reader[1]:
            return True
    return False


def _refuse(result: Transfer, doing: str) -> None:
    """AgentError for a script's failure (its exit status; its last message names the path)."""
    where = result.message
    if result.code == 0:
        return
    refusals = {
        10: ("is_directory", f"{where} is a directory"),
        11: ("no_such_file", f"{where} does not exist"),
        12: ("bad_path", where),
        15: ("bad_path", f"{where} is not a regular file"),
    }
    code, message = refusals.get(result.code or -1, ("bad_path", f"could not {doing} the file: {where}"))
    raise AgentError(code, message)


async def _read_messages(proc: asyncio.subprocess.Process) -> bytes:
    """The script's stderr (its first STDERR_LIMIT bytes) once it ends, and runc's exit."""
    assert proc.stderr is not None
    kept = bytearray()
    while chunk := await proc.stderr.read(CHUNK):
        kept += chunk[: max(0, STDERR_LIMIT - len(kept))]
    await proc.wait()
    return bytes(kept)
