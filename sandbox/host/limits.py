"""Kernel limits of the host that sandboxes count against, raised by the agent when it starts.

Each is a host-wide count that no namespace or cgroup divides between sandboxes; the agent
raises it (never lowers it) so that the per-sandbox bounds, summed over
``PLAYGROUND_HOST_MAX_SANDBOXES``, fit under it and one sandbox cannot use it up for the others:

* ``kernel.keys.maxkeys`` and ``maxbytes``: every sandbox's ``runc init`` joins a new session
  keyring owned by the sandbox's root. That is the first id of the sandbox's own id range now
  (:mod:`sandbox.host.idranges`); when one uid was shared by every sandbox, the per-user quota
  (200 keys and 20000 bytes by default) stopped a host at about 200 sandboxes ("unable to join
  session keyring: ... disk quota exceeded"). Still raised, to at least what LXD's production
  set-up recommends (2000 keys, 2 MB), or more for more sandboxes.
* ``kernel.pty.max``: the pseudo-terminals of every devpts instance together. Instances mounted
  outside the host's initial mount namespace (every sandbox's) may use all but
  ``kernel.pty.reserve`` of them, the host's own ptys included. Each sandbox's own devpts is capped
  at ``PLAYGROUND_SANDBOX_PTYS``, but root in a docker sandbox may mount instances without a cap,
  which the agent's guard (:mod:`sandbox.agent.ptyguard`) bounds from outside within a second.
  Raised to the kernel's highest (``PTY_MAX_HIGHEST``): a count no one can use up before memory,
  each pty being about 3 KiB charged to the memory cgroup of its opener (the pool of about a
  million needs about 3 GiB), nor within the guard's second (about 40,000 opens per CPU).
* ``fs.file-max``: open files of the whole host; past it every process without CAP_SYS_ADMIN gets
  ENFILE. Each open file is a kernel object of at least ``FILE_BYTES`` charged to the memory
  cgroup of whoever opened it, so a sandbox's open files are bounded by its memory limit (and,
  for those held by descriptors, by RLIMIT_NOFILE times its pids limit). Raised to the host's
  memory divided by ``FILE_BYTES``: the count can then never run out before memory does, which
  is what systemd does by default (it sets fs.file-max to its largest value).

Also checked at start (:func:`ensure_own_limits`): the agent's own hard limits on message-queue
bytes and pending signals, which each sandbox's user namespace records as its bounds when the
agent makes it (:mod:`sandbox.host.userns`); they cannot be lowered below a sandbox's setting
without refusing to start.
"""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

log = logging.getLogger("sandbox.host.limits")

SYSCTL_DIR = Path("/proc/sys")
KEYS_PER_SANDBOX = 5
BYTES_PER_KEY = 1000
PTY_MAX_HIGHEST = 1 << 20  # the kernel's NR_UNIX98_PTY_MAX
FILE_BYTES = 192  # the slab object of one struct file (the "filp" cache) on x86_64


def wanted_key_quota(sandboxes: int) -> dict[str, int]:
    """The per-user key quota a host of ``sandboxes`` sandboxes needs."""
    keys = max(2000, KEYS_PER_SANDBOX * sandboxes)
    return {"maxkeys": keys, "maxbytes": keys * BYTES_PER_KEY}


def wanted_file_max(memory_bytes: int) -> int:
    """The ``fs.file-max`` that a host of ``memory_bytes`` cannot reach before its memory is full."""
    return memory_bytes // FILE_BYTES


def host_memory_bytes() -> int:
    """The host's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def raise_limit(path: Path, name: str, value: int, without: str) -> bool:
    """Raise the sysctl ``name`` (dotted), read and written at ``path``, to ``value`` if it is
    lower; True if it was raised. One that cannot be read or written is logged with the command
    to run and what happens ``without`` it, and left alone."""
    try:
        current = int(path.read_text().split()[0])
        if current >= value:
            return False
        path.write_text(f"{value}\n")
    except (OSError, ValueError, IndexError) as exc:
        log.warning("cannot raise %s to %d (%s); run 'sysctl -w %s=%d' or %s", name, value, exc, name, value, without)
        return False
    log.info("raised %s from %d to %d", name, current, value)
    return True


def ensure_key_quota(sandboxes: int, keys_dir: Path = SYSCTL_DIR / "kernel/keys") -> dict[str, int]:
    """Raise ``kernel.keys.maxkeys`` and ``maxbytes`` to :func:`wanted_key_quota` where lower;
    returns the values raised (name -> new value)."""
    raised = {}
    for name, value in wanted_key_quota(sandboxes).items():
        if raise_limit(keys_dir / name, f"kernel.keys.{name}", value, "sandboxes beyond about 200 fail to start"):
            raised[name] = value
    return raised


def ensure_host_limits(sandboxes: int, sysctl_dir: Path = SYSCTL_DIR) -> dict[str, int]:
    """Raise every limit of this module for ``sandboxes`` sandboxes; returns the values raised
    (sysctl name -> new value)."""
    keys = ensure_key_quota(sandboxes, sysctl_dir / "kernel/keys")
    raised = {f"kernel.keys.{name}": value for name, value in keys.items()}
    wanted = {
        "kernel.pty.max": (
            PTY_MAX_HIGHEST,
            "a sandbox that opens pseudo-terminals fast may leave none to the others for a second",
        ),
        "fs.file-max": (
            wanted_file_max(host_memory_bytes()),
            "sandboxes holding many open files may leave none to the host's other users (ENFILE)",
        ),
    }
    for name, (value, without) in wanted.items():
        if raise_limit(sysctl_dir / name.replace(".", "/"), name, value, without):
            raised[name] = value
    return raised


class OwnLimitTooLow(Exception):
    """A per-sandbox bound is above the agent's own hard limit, which it cannot raise."""


def ensure_own_limits(wanted: dict[str, tuple[int, int]]) -> None:
    """Make the agent's own hard limits at least the per-sandbox bounds that the sandboxes' user
    namespaces take from it (setting name -> (``resource.RLIMIT_*``, value)); a process may lower
    its limits but not raise them without CAP_SYS_RESOURCE. OwnLimitTooLow names the setting, the
    values and the fix when one is too high."""
    for name, (which, value) in wanted.items():
        soft, hard = resource.getrlimit(which)
        if hard == resource.RLIM_INFINITY or hard >= value:
            continue
        try:
            resource.setrlimit(which, (min(soft, value), value))
        except (OSError, ValueError):
            raise OwnLimitTooLow(
                f"{name}={value} is above the agent's own hard limit ({hard}), which it cannot raise without "
                f"CAP_SYS_RESOURCE: lower {name} to at most {hard}, or raise the agent's limit where it is "
                "started (e.g. LimitMSGQUEUE= or LimitSIGPENDING= in its systemd unit, or prlimit)"
            ) from None
        log.info("raised the agent's own hard limit for %s from %d to %d", name, hard, value)
