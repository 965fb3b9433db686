"""The replay buffer of a terminal: its last output, in shared memory that outlives the agent.

A ring of ``capacity`` bytes in a memfd, after an 8-byte header holding how many bytes were
ever written. Writes go straight into the mapping, so when the agent dies (even by SIGKILL)
the keeper (:mod:`sandbox.keeper`), which holds a duplicate of the memfd, still has the
screen; the next agent maps the same memfd and a viewer that reconnects sees it replayed.
"""

from __future__ import annotations

import mmap
import os
import struct

HEADER = struct.Struct("<Q")  # total bytes ever appended


class ReplayBuffer:
    """The last ``capacity`` bytes appended; owns its memfd until :meth:`close`."""

    def __init__(self, capacity: int, fd: int | None = None) -> None:
        """A new buffer of ``capacity`` bytes, or, with ``fd``, the existing one in that memfd
        (its capacity is then read from the memfd's size and ``capacity`` is ignored)."""
        if fd is None:
            fd = os.memfd_create("playground-replay", os.MFD_CLOEXEC)
            os.ftruncate(fd, HEADER.size + capacity)
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
            data = data[-self.capacity:]
        start = total % self.capacity
        first = min(len(data), self.capacity - start)
        self._map[HEADER.size + start:HEADER.size + start + first] = data[:first]
        if first < len(data):
            self._map[HEADER.size:HEADER.size + len(data) - first] = data[first:]
        HEADER.pack_into(self._map, 0, total + len(data))  # last, so a crash mid-copy loses only this

    def contents(self) -> bytes:
        """What is kept, oldest first."""
        total = self.total
        kept = min(total, self.capacity)
        start = (total - kept) % self.capacity
        first = min(kept, self.capacity - start)
        body = HEADER.size
        return self._map[body + start:body + start + first] + self._map[body:body + kept - first]

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def close(self) -> None:
        """Unmap and close the memfd (the memory is freed once the keeper lets go too). Repeatable."""
        if not self._map.closed:
            self._map.close()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
