"""Which of the x86 system call ABIs beside the native one the host kernel runs.

The sandbox's seccomp filter covers every ABI a process could reach the kernel by; one the
kernel does not run needs no rules (:mod:`sandbox.runtime.seccomp`): libseccomp kills a process
that calls through an ABI the filter does not cover, so nothing gets through it either way, and
each ABI left out saves runc's init compiling its rules at every sandbox start (about 8 ms of
CPU each for x32 on this project's host, a quarter of a ``runc run``).

x32 (system call numbers with bit 30 set, on x86_64's audit architecture) is run only by kernels
built with ``CONFIG_X86_X32_ABI`` and, on Debian's, booted with ``syscall.x32=y``: few hosts.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys

X32_SYSCALL_BIT = 0x40000000
GETPID = 39  # x86_64's and x32's number for getpid

# Run in a child: a seccomp filter the agent itself runs under (in a container, say) may kill a
# process that tries an ABI it does not cover.
_PROBE = (
    "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
    f"sys.exit(0 if libc.syscall(ctypes.c_long({X32_SYSCALL_BIT | GETPID})) == os.getpid() else 1)"
)


@functools.cache
def runs_x32() -> bool:
    """Whether the kernel answers an x32 system call (an x32 getpid, tried in a child process).
    False off x86_64, or when the child cannot tell (it is killed, or fails to run)."""
    if platform.machine() != "x86_64":
        return False
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
