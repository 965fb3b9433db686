"""The replay buffer of a terminal: its last output, in shared memory that outlives the agent.

A ring of ``capacity`` bytes in a memfd, after an 8-byte header holding how many bytes were
ever written. Writes go straight into the mapping, so when the agent dies (even by SIGKILL)
the keeper (:mod:`sandbox.keeper.service`), which holds a duplicate of the memfd, still has the
screen; the next agent maps the same memfd and a viewer that reconnects sees it replayed.

The memfd's size is sealed (``F_SEAL_SHRINK | F_SEAL_GROW``): the web tier, lent the reading of
a terminal, gets a duplicate to append to, and must not be able to shrink it under the agent's
mapping (which would kill the agent with SIGBUS at its next access).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

HEADER = struct.Struct("<Q")  # total bytes ever appended
SIZE_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW


class ReplayBuffer:
    """The last ``capacity`` bytes appended; owns its memfd until :meth:`close`."""

    def __init__(self, capacity: int, fd: int | None = None) -> None:
        """A new buffer of ``capacity`` bytes, or, with ``fd``, the existing one in that memfd
        (its capacity is then read from the memfd's size and ``capacity`` is ignored)."""
        if fd is None:
            fd = os.memfd_create("playground-replay", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, HEADER.size + capacity)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SIZE_SEALS | fcntl.F_SEAL_SEAL)
        else:
            size = os.fstat(fd).st_size
            if size <= HEADER.size:
                os.close(fd)
                raise ValueError(f"a replay memfd of {size} bytes is too small to hold a buffer")
            capacity = size - HEADER.size
        self.fd = fd
        self.capacity = capacity
        self._map = mmap.mmap(fd, HEADER.size + capacity)

    @property
    def size_sealed(self) -> bool:
        """Whether nobody can change the memfd's size (so it may be handed to the web tier)."""
        try:
            return fcntl.fcntl(self.fd, fcntl.F_GET_SEALS) & SIZE_SEALS == SIZE_SEALS
        except OSError:
            return False

    @property
    def total(self) -> int:
        """Bytes appended since the buffer was made (also by earlier agents)."""
        return HEADER.unpack_from(self._map, 0)[0]

    def append(self, data: bytes) -> None:
        """Keep ``data`` as the newest output, dropping the oldest beyond the capacity."""
        if not data:
            return
        total = self.total
        if len(data) > self.capacity:
            total += len(data) - self.capacity
            data = data[-self.capacity :]
        start = total % self.capacity
        first = min(len(data), self.capacity - start)
        self._map[HEADER.size + start : HEADER.size + start + first] = data[:first]
        if first < len(data):
            self._map[HEADER.size : HEADER.size + len(data) - first] = data[first:]
        HEADER.pack_into(self._map, 0, total + len(data))  # last, so a crash mid-copy loses only this

    def contents(self) -> bytes:
        """What is kept, oldest first."""
        total = self.total
        kept = min(total, self.capacity)
        start = (total - kept) % self.capacity
        first = min(kept, self.capacity - start)
        body = HEADER.size
        return self._map[body + start : body + start + first] + self._map[body : body + kept - first]

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def close(self) -> None:
        """Unmap and close the memfd (the memory is freed once the keeper lets go too). Repeatable."""
        if not self._map.closed:
            self._map.close()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
