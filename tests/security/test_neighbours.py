"""A noisy neighbour cannot starve another sandbox, the host, or its own destruction."""

from __future__ import annotations

from bench.neighbours import measure
from tests.stack import Stack


async def test_a_sandbox_abusing_every_quota_leaves_its_neighbour_responsive(stack: Stack) -> None:
    result = await measure(stack, 100)
    # Contained: the fork bomb stops at the pids limit (200 for busybox in the session stack), the
    # CPU burn at its quota, memory at its limit. The count is a snapshot of every sandbox of the
    # stack: the abuser's (maybe just after the OOM killer took a few) and the neighbour's shell
    # with at most one command.
    assert 190 <= result["abuse_processes"] <= 200 + 2, result
    assert result["abuse_cpus_busy"] <= 1.2
    assert result["abuse_oom_kills"] > 0
    # The neighbour's echo stays interactive (make bench measures the exact ratio; this bound is generous).
    assert result["loaded_median_ms"] <= max(4 * result["idle_median_ms"], result["idle_median_ms"] + 20), result
    assert result["api_request_under_load_ms"] < 2000, result
    # And the abuser is destroyed cleanly.
    assert result["left_on_host"] == 0 and result["abuser_destroyed_s"] < 30, result
