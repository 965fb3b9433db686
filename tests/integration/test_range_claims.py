"""Id range claims of two agents on one host (test stacks, or an operator's second Playground with the
same uid base) never take one range: each claim reads the ranges taken and mounts its record under a
host-wide lock (sandbox.host.idranges.CLAIM_LOCK)."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

from sandbox.host import mounts
from sandbox.host.idranges import CLAIM_LOCK, LAYER, Ranges, taken

BASE = 1_000_000_000


def test_a_claim_waits_while_another_agent_holds_the_claim_lock(tmp_path: Path) -> None:
    claimed: list[int] = []
    with open(str(CLAIM_LOCK).format(base=BASE), "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another agent between its read and its mount
        claim = threading.Thread(target=lambda: claimed.append(Ranges(BASE, 1000).claim(tmp_path)))
        claim.start()
        claim.join(0.5)
        assert claim.is_alive() and not (tmp_path / LAYER).is_mount(), "the claim did not wait for the lock"
    claim.join(60)  # long on a loaded host: a claim still running after the unmount below would leak its mount
    try:
        assert not claim.is_alive(), "the claim did not finish within 60 s of the lock's release"
        assert claimed and taken(BASE)[tmp_path / LAYER] == claimed[0]
    finally:
        mounts.unmount(tmp_path / LAYER)
