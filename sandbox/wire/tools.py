"""Running the external tools that make images (debootstrap, skopeo, umoci; the registry's seeds'
debootstrap and gcc on the web tier's side), bounded and killable.

Each tool runs with SIGKILL as its parent-death signal, so killing the command that started it
(``python -m sandbox.images build``, even with SIGKILL) stops the tool too instead of leaving it writing
into a workspace. Output is read line by line (for progress) and its tail kept for errors.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class ToolError(Exception):
    """A tool is missing or failed; the message names it, its exit status and its last words."""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started us ends."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def require(tool: str, package: str) -> str:
    """The path of ``tool``, or ToolError saying which Debian package provides it."""
    path = shutil.which(tool)
    if path is None:
        raise ToolError(
            f"{tool} is not installed; install Debian's {package} package "
            f"(apt-get install {package}) or run 'make deps'."
        )
    return path


def run(
    argv: list[str],
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Run ``argv`` to its end, passing each output line (stdout and stderr) to ``on_line``.

    Must be called from a thread that outlives the tool (see the module docstring).
    """
    tail: collections.deque[str] = collections.deque(maxlen=20)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            if on_line is not None:
                on_line(line)
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.stdout.close()
        status = proc.wait()
    if status != 0:
        words = "\n  ".join(tail) or "(no output)"
        raise ToolError(f"{os.path.basename(argv[0])} failed with exit status {status}; its last output:\n  {words}")
