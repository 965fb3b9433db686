"""Kernel limits of the host that sandboxes count against, raised by the agent when it starts.

Every sandbox's ``runc init`` joins a new session keyring owned by the sandbox's root, which on
the host is ``PLAYGROUND_SANDBOX_UID_BASE``: one unprivileged uid shared by every sandbox. The
kernel's per-user key quota (``kernel.keys.maxkeys`` 200 and ``kernel.keys.maxbytes`` 20000 by
default) then stops a host at about 200 sandboxes, and the next ``runc run`` fails with "unable
to join session keyring: unable to create session key: disk quota exceeded". The agent raises
both to at least what LXD's production set-up recommends (2000 keys, 2 MB), or more for a larger
``PLAYGROUND_HOST_MAX_SANDBOXES``; it never lowers them.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("sandbox.host.limits")

KEYS_DIR = Path("/proc/sys/kernel/keys")
KEYS_PER_SANDBOX = 5
BYTES_PER_KEY = 1000


def wanted_key_quota(sandboxes: int) -> dict[str, int]:
    """The per-user key quota a host of ``sandboxes`` sandboxes needs."""
    keys = max(2000, KEYS_PER_SANDBOX * sandboxes)
    return {"maxkeys": keys, "maxbytes": keys * BYTES_PER_KEY}


def ensure_key_quota(sandboxes: int, keys_dir: Path = KEYS_DIR) -> dict[str, int]:
    """Raise ``kernel.keys.maxkeys`` and ``maxbytes`` to :func:`wanted_key_quota` where lower;
    returns the values raised (name -> new value). A limit that cannot be read or written is
    logged with what to do and left alone: sandboxes then fail beyond it with runc's message."""
    raised = {}
    for name, value in wanted_key_quota(sandboxes).items():
        path = keys_dir / name
        try:
            current = int(path.read_text())
            if current < value:
                path.write_text(f"{value}\n")
                raised[name] = value
                log.info("raised kernel.keys.%s from %d to %d for up to %d sandboxes", name, current, value, sandboxes)
        except (OSError, ValueError) as exc:
            log.warning(
                "cannot raise kernel.keys.%s to %d (%s); run 'sysctl -w kernel.keys.%s=%d' or sandboxes "
                "beyond about 200 fail to start",
                name,
                value,
                exc,
                name,
                value,
            )
    return raised
