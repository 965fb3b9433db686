"""Running a script inside a live sandbox (the agent's ``run`` op): lab checks, setups, solves.

A run is ``runc exec`` of ``/bin/sh -s`` (the script on its standard input, its stderr joined to
its stdout) as root inside the sandbox, with the image's environment and working directory from
the sandbox's own runtime configuration (so its namespaces, seccomp filter, capabilities and
quotas too); never a process on the host. Output (stdout and stderr merged) is read up to a
byte limit within a deadline.

Every run gets its own sub-cgroup, ``<sandbox cgroup>/run-<token>``, in every hierarchy the
sandbox has (cgroup v1, v2 and hybrid alike), and ``runc exec --cgroup`` puts the script there.
Whatever the script starts, daemonised or not, stays in that cgroup (inside, ``/sys/fs/cgroup``
is read-only), so ending a run is: freeze the cgroup, SIGKILL everything in it, thaw, until it
is empty, then remove it. That happens at every end of a run (exit, timeout, output limit), so
a run never leaves a process behind, and the visitor's own shell, in the parent cgroup, is
never touched.

Concurrency is bounded per sandbox (``PER_SANDBOX``: a third run of one sandbox is refused at once,
``busy``: a double click, or a script started while the last still runs) and per agent
(``PER_AGENT``). A run over the agent's bound waits its turn, in arrival order, up to ``HOST_WAIT``
seconds, and is refused ``host_busy`` only after that: a class of 50 pressing "Check" at the same
moment is served in turn, never told to come back. A waiting run counts towards its sandbox's
bound. The client allows for the wait (:mod:`sandbox.wire.client`, its reply timeout grows with
the request's ``timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.host import cgroups
from sandbox.runtime.execs import bundle_process, exited, limits_prefix
from sandbox.runtime.turns import Turns
from sandbox.wire.protocol import AgentError

log = logging.getLogger("sandbox.runtime.labscripts")

MAX_TIMEOUT = 300.0  # seconds; the web tier's own setting is lower
MAX_LIMIT = 256 * 1024  # bytes of output; the reply must fit one protocol frame even when escaped
PER_SANDBOX = 2
PER_AGENT = 32
HOST_WAIT = 30.0  # seconds a run over PER_AGENT waits for its turn before being refused
KILL_DEADLINE = 10.0  # seconds to empty a run's cgroup
READ_CHUNK = 65536
# The script's shell, its stderr joined to its stdout inside the sandbox: without a terminal runc
# copies the two through pipes of its own, one goroutine each, which would interleave them in any
# order; one stream keeps the order in which the script wrote.
MERGED_SHELL = "exec 2>&1 /bin/sh -s"


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``code`` is the script's exit status, None when it was cut off."""

    code: int | None
    output: str
    truncated: bool
    timed_out: bool
    seconds: float

    def reply(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "output": self.output,
            "truncated": self.truncated,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 3),
        }


def parse_request(request: dict[str, Any]) -> tuple[str, float, int]:
    """The script, timeout and limit of a ``run`` request, or AgentError ``bad_request``."""
    script, timeout, limit = request.get("script"), request.get("timeout", 10), request.get("limit", 65536)
    if not isinstance(script, str) or len(script.encode()) > MAX_LIMIT:
        raise AgentError("bad_request", f"script must be a string of at most {MAX_LIMIT} bytes")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise AgentError("bad_request", f"timeout={timeout!r} is invalid; use 0 to {MAX_TIMEOUT:.0f} seconds")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise AgentError("bad_request", f"limit={limit!r} is invalid; use 1 to {MAX_LIMIT} bytes")
    return script, float(timeout), limit


class CommandRunner:
    """Runs scripts in the sandboxes of one runc root (their bundles in ``sandboxes_dir``), bounded
    per sandbox and per agent."""

    def __init__(
        self,
        runc_root: Path,
        sandboxes_dir: Path,
        cgroup_parent: str,
        runc: str = "runc",
        per_sandbox: int = PER_SANDBOX,
        per_agent: int = PER_AGENT,
        host_wait: float = HOST_WAIT,
    ) -> None:
        self.runc_root = runc_root
        self.sandboxes_dir = sandboxes_dir
        self.cgroup_parent = cgroup_parent
        self.runc = runc
        self.turns = Turns(
            per_sandbox,
            per_agent,
            host_wait,
            busy="this sandbox already runs {n} scripts; wait for them to finish and try again",
            host_busy="this host has been running {n} scripts at once for {wait} s; try again in a moment",
        )

    def exec_command(self, runtime_id: str, cgroup: str) -> list[str]:
        """The start of a ``runc exec`` in the sandbox ``runtime_id`` (as its root, with its
        process's limits) whose process goes to the sandbox's sub-cgroup ``cgroup``; its options
        and command follow. AgentError ``unknown_sandbox`` if its bundle cannot be read."""
        _, nofile = bundle_process(self.sandboxes_dir / runtime_id, runtime_id)
        runc = [self.runc, "--root", str(self.runc_root), "exec", "--cgroup", cgroup]
        return [*limits_prefix(nofile), *runc]

    async def run(self, runtime_id: str, script: str, timeout: float, limit: int) -> RunResult:
        """Run ``script`` in the sandbox ``runtime_id``; AgentError ``busy`` over the sandbox's bound,
        ``host_busy`` when no turn among the agent's came within ``host_wait`` seconds (:class:`Turns`)."""
        async with self.turns.slot(runtime_id):
            return await self._run(runtime_id, script, timeout, limit)

    async def _run(self, runtime_id: str, script: str, timeout: float, limit: int) -> RunResult:
        name = f"run-{secrets.token_hex(6)}"
        dirs = make_subgroup(self.cgroup_parent, runtime_id, name)
        started = time.monotonic()
        try:
            code, output, truncated, timed_out = await self._exec(runtime_id, name, script, timeout, limit, dirs)
        finally:
            await end_subgroup(dirs)
        text = output.decode("utf-8", errors="replace")
        return RunResult(code, text, truncated, timed_out, time.monotonic() - started)

    async def _exec(
        self, runtime_id: str, name: str, script: str, timeout: float, limit: int, dirs: list[Path]
    ) -> tuple[int | None, bytes, bool, bool]:
        with tempfile.TemporaryDirectory(prefix="pg-run-") as scratch:
            pid_file = Path(scratch) / "pid"
            read_end, write_end = os.pipe()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.exec_command(runtime_id, name),
                    "--pid-file",
                    str(pid_file),
                    runtime_id,
                    "/bin/sh",
                    "-c",
                    MERGED_SHELL,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=write_end,
                    stderr=write_end,
                    start_new_session=True,
                )
            finally:
                os.close(write_end)
            return await self._collect(proc, read_end, _wait_for_shell(pid_file, name), script, timeout, limit, dirs)

    async def _collect(
        self,
        proc: asyncio.subprocess.Process,
        read_end: int,
        shell_exit: Coroutine[Any, Any, None],
        script: str,
        timeout: float,
        limit: int,
        dirs: list[Path],
    ) -> tuple[int | None, bytes, bool, bool]:
        """Wait until the shell exits, the deadline passes or the output passes the limit; then
        kill what is left of the run and collect its output and exit status.

        runc's own exit is not enough: without a terminal it copies the output through pipes of
        its own until no process holds them, e.g. a ``sleep 100 &`` of the script; so the shell's
        exit is watched through a pidfd of the pid runc writes.
        """
        reader = asyncio.create_task(_read_limited(read_end, limit + 1))
        feeder = asyncio.create_task(_feed(proc, script.encode()))
        exited, shell = asyncio.create_task(proc.wait()), asyncio.create_task(shell_exit)
        deadline = time.monotonic() + timeout
        pending: set[asyncio.Task[Any]] = {reader, exited, shell}
        timed_out = False
        while True:
            done, pending = await asyncio.wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                timed_out = True
                break
            if exited.done() or shell.done() or len(reader.result()) > limit:
                break  # else the output ended (closed by the script): the shell may still be running
        await end_subgroup(dirs, remove=False)  # also closes the pipe's other ends held inside
        output = await _finish(reader, proc)
        for task in (feeder, exited, shell):
            task.cancel()
        truncated = len(output) > limit
        cut = timed_out or truncated
        return (None if cut else proc.returncode), output[:limit], truncated, timed_out


async def _wait_for_shell(pid_file: Path, name: str) -> None:
    """Return when the shell runc started (its pid in ``pid_file``, in the run's cgroup ``name``) exits."""
    while True:
        try:
            pid = int(pid_file.read_text())
            break
        except (OSError, ValueError):
            await asyncio.sleep(0.01)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if f"/{name}\n" not in Path(f"/proc/{pid}/cgroup").read_text():
            return  # gone already, and its pid taken by another process
        await exited(pidfd)
    except OSError:
        return
    finally:
        os.close(pidfd)


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Write the script to the shell's standard input and close it (a script that never reads it is fine)."""
    assert proc.stdin is not None
    with contextlib.suppress(ConnectionError, BrokenPipeError):
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()


async def _read_limited(fd: int, most: int) -> bytes:
    """Read ``fd`` until end of file or ``most`` bytes; closes it."""
    data = bytearray()
    await read_into(fd, most, data.extend)
    return bytes(data)


async def read_into(fd: int, most: int, sink: Callable[[bytes], object]) -> int:
    """Give what ``fd`` (a pipe) holds to ``sink``, chunk by chunk, until end of file or ``most``
    bytes; closes it. The number of bytes read."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    done = 0
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while done < most:
            try:
                chunk = os.read(fd, min(READ_CHUNK, most - done))
            except BlockingIOError:
                readable.clear()
                await readable.wait()
                continue
            if not chunk:
                break
            sink(chunk)
            done += len(chunk)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return done


async def _finish(reader: asyncio.Task[bytes], proc: asyncio.subprocess.Process) -> bytes:
    """The output read so far once the run's processes are gone; runc itself is ended if it lingers."""
    try:
        output = await asyncio.wait_for(asyncio.shield(reader), 5.0)
    except TimeoutError:
        reader.cancel()
        output = b""
        log.error("a run's output did not end after its processes were killed")
    await end_runc(proc)
    return output


async def end_runc(proc: asyncio.subprocess.Process) -> None:
    """Wait for runc (its own session's leader), ending it if it lingers after its processes in
    the sandbox were killed."""
    try:
        await asyncio.wait_for(proc.wait(), 5.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


# -- the run's cgroup ------------------------------------------------------------------------------
def make_subgroup(parent: str, runtime_id: str, name: str) -> list[Path]:
    """Create ``name`` under the sandbox's cgroup in every hierarchy it has; returns the new directories.

    A v1 cpuset child starts with no CPUs and memory nodes, so it gets its parent's.
    """
    made = []
    try:
        for base in cgroups.sandbox_dirs(parent, runtime_id):
            path = base / name
            path.mkdir()
            made.append(path)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (base / knob).exists():
                    (path / knob).write_text((base / knob).read_text())
    except OSError as exc:
        for path in made:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise AgentError("run_failed", f"could not make a cgroup for the script: {exc}") from None
    if not made:
        raise AgentError("unknown_sandbox", f"sandbox {runtime_id} has no cgroup on this host")
    return made


def _set(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


async def end_subgroup(dirs: list[Path], remove: bool = True) -> None:
    """Kill every process in the run's cgroup (frozen first, so none can fork meanwhile), then
    remove the cgroup. Missing directories (the sandbox was destroyed meanwhile) are fine."""
    freezer = next((d / "freezer.state" for d in dirs if (d / "freezer.state").exists()), None)
    freeze_v2 = next((d / "cgroup.freeze" for d in dirs if (d / "cgroup.freeze").exists()), None)
    kill_v2 = next((d / "cgroup.kill" for d in dirs if (d / "cgroup.kill").exists()), None)
    deadline = time.monotonic() + KILL_DEADLINE
    while (pids := cgroups.processes(dirs)) and time.monotonic() < deadline:
        if kill_v2 is not None and _set(kill_v2, "1"):
            await asyncio.sleep(0.01)
            continue
        frozen = _set(freezer, "FROZEN") if freezer else bool(freeze_v2 and _set(freeze_v2, "1"))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if frozen:
            _set(freezer, "THAWED") if freezer else _set(freeze_v2, "0")  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
    if not remove:
        return
    for path in dirs:
        while True:
            try:
                path.rmdir()
                break
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    break
                if time.monotonic() > deadline:
                    log.error("could not remove %s (%s); the sandbox's destruction removes it", path, exc)
                    break
                await asyncio.sleep(0.02)
