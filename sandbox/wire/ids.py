"""The host ids sandboxes' user namespaces map: the image store's range and one range per sandbox.

Each sandbox runs in its own user namespace: ids 0 to ``USERNS_SIZE - 1`` inside (root is 0)
map to a contiguous range of ``USERNS_SIZE`` host ids, so no id inside a sandbox is an id of the
host. Range 0 starts at the sandbox host's uid base (``PLAYGROUND_SANDBOX_UID_BASE``) and belongs
to the image store: image files are owned by it on disk and no live sandbox maps it. The pool of
sandbox ranges follows: range ``i`` (from 0) starts at ``base + (i + 1) * USERNS_SIZE``, and no two
live sandboxes hold the same one, so the kernel's per-uid counts (pipe buffers, inotify
watches, descriptors in flight, processes) are each sandbox's own. The last id of the last range
stays below ``2**32 - 1`` (``(uid_t) -1``, which no process may hold). This module lives in the
lowest layer because the sandbox host's settings (below ``sandbox.host``) check the uid base
and the number of ranges with it.
"""

from __future__ import annotations

USERNS_SIZE = 65536  # ids mapped into every sandbox's user namespace: 0-65535 inside
LAST_ID = 2**32 - 2  # the largest usable host id: 2**32 - 1 is (uid_t) -1


def range_start(base: int, index: int) -> int:
    """The first host id (root inside) of sandbox range ``index`` (from 0) above ``base``'s own."""
    if index < 0:
        raise ValueError(f"range index {index} is negative")
    return base + (index + 1) * USERNS_SIZE


def range_index(base: int, start: int) -> int | None:
    """The index of the sandbox range that starts at host id ``start``; None if none of ``base``'s
    pool starts there (``base`` itself, the image store's range, included)."""
    offset = start - base
    if offset <= 0 or offset % USERNS_SIZE:
        return None
    return offset // USERNS_SIZE - 1


def max_ranges(base: int) -> int:
    """How many sandbox ranges fit above ``base``'s own with their last id at most ``LAST_ID``."""
    return max(0, (LAST_ID - base + 1) // USERNS_SIZE - 1)
