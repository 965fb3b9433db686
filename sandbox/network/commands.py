"""Running the host's network tools (``ip``, ``nft``) for :mod:`sandbox.network`.

Every failure becomes a :class:`~sandbox.network.layout.NetworkError` that names the command and
what it said, or the Debian package to install when the tool is missing; no command outlives
its deadline or a cancelled caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

from sandbox.network.layout import NetworkError

COMMAND_TIMEOUT = 10.0
PACKAGE_OF = {"ip": "iproute2", "bridge": "iproute2", "nft": "nftables"}


async def run(
    *args: str,
    input_text: str | None = None,
    ok_errors: tuple[str, ...] = (),
    hint: str = "",
    timeout: float = COMMAND_TIMEOUT,
) -> tuple[int, str, str]:
    """Run a command; NetworkError on failure unless stderr contains one of ``ok_errors``."""
    command = " ".join(args)
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise NetworkError(_not_installed(args[0])) from None
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input_text.encode() if input_text is not None else None), timeout
        )
    except TimeoutError:
        await _kill(proc)
        raise NetworkError(
            f"`{command}` did not finish within {timeout:.0f} s; is the host overloaded or the netlink socket stuck?"
        ) from None
    except BaseException:  # cancelled: do not leave the command running
        await asyncio.shield(_kill(proc))
        raise
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace").strip()
    if proc.returncode != 0 and not any(e in stderr for e in ok_errors):
        detail = f"; input:\n{input_text}" if input_text and len(input_text) < 400 else ""
        raise NetworkError(
            f"`{command}` failed (exit {proc.returncode}): {stderr or 'no message'}"
            f"{'; ' + hint if hint else ''}{detail}"
        )
    return proc.returncode or 0, stdout, stderr


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def run_sync(*args: str) -> tuple[int, str, str]:
    """Run a command and return its exit status, output and errors; NetworkError only when it is
    missing or does not finish in time."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise NetworkError(_not_installed(args[0])) from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"`{' '.join(args)}` did not finish within {COMMAND_TIMEOUT:.0f} s") from None
    return done.returncode, done.stdout, done.stderr


def _not_installed(tool: str) -> str:
    return (
        f"{tool} is not installed: install the Debian package {PACKAGE_OF.get(tool, tool)} (deploy/install-deps.sh run)"
    )
