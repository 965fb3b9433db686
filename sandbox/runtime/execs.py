"""What every runc process that starts processes in a sandbox needs: the resource limits they inherit
(``runc run`` for the first shell, ``runc exec`` for the agent's tabs in :mod:`sandbox.runtime.runc`
and for lab scripts in :mod:`sandbox.runtime.labscripts`), and a wait for such a process's exit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sandbox.wire.protocol import AgentError

NOFILE_ANNOTATION = "playground.nofile"  # in the bundle's config.json: the sandbox's RLIMIT_NOFILE


def limits_prefix(nofile: int) -> tuple[str, ...]:
    """The command to run runc under so that the sandbox's processes get ``nofile`` open files at
    most (RLIMIT_NOFILE, soft and hard) and no core dumps.

    The OCI ``rlimits`` would have runc set them on the new process from outside (prlimit), which
    the kernel allows only with CAP_SYS_RESOURCE over the process's user namespace; host root
    lacks it over a namespace it does not own when it runs without CAP_SYS_RESOURCE itself (as
    in some containers and CI runners). Limits set on runc itself are inherited instead, and
    lowering one's own limits needs no capability."""
    return ("prlimit", f"--nofile={nofile}", "--core=0", "--")


def bundle_process(directory: Path, runtime_id: str) -> tuple[list[str], int]:
    """The command of the sandbox's first process and its open-file limit, from the bundle in
    ``directory``; AgentError ``unknown_sandbox`` if the bundle cannot be read."""
    try:
        config = json.loads((directory / "config.json").read_text())
        return list(config["process"]["args"]), int(config["annotations"][NOFILE_ANNOTATION])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AgentError("unknown_sandbox", f"sandbox {runtime_id} has no usable bundle: {exc}") from None


async def exited(pidfd: int) -> None:
    """Return once the process of ``pidfd`` has exited (a pidfd polls readable then)."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(pidfd, done.set)
    try:
        await done.wait()
    finally:
        loop.remove_reader(pidfd)
