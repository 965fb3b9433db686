"""The host ids every sandbox's user namespace maps.

Each sandbox runs in its own user namespace: ids 0 to ``USERNS_SIZE - 1`` inside (root is 0)
map to a contiguous range of host ids starting at the sandbox host's uid base, so no id inside
a sandbox is an id of the host. Image files must be owned by ids inside that range, and the uid
base must leave room for the whole range below the largest host id. It lives in the lowest layer
because the sandbox host's settings (below ``sandbox.host``) check the uid base against it.
"""

from __future__ import annotations

USERNS_SIZE = 65536  # ids mapped into every sandbox's user namespace: 0-65535 inside
