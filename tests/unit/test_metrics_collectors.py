"""The parts of a scrape that need no stack (playground.metrics.collectors): the live gauges of
processes that are gone, and the sandboxes' CPU rate between two scrapes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from playground.metrics.collectors import CpuRate, forget_dead_processes


def test_the_live_gauges_of_a_process_that_is_gone_are_forgotten_and_its_counters_kept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its /proc entry is gone
    names = [f"gauge_livesum_{gone.pid}.db", f"counter_{gone.pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    forget_dead_processes(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_the_cpu_rate_counts_what_each_sandbox_gained_and_none_at_first() -> None:
    rate = CpuRate()
    assert rate.cores(100.0, {"a": 5.0, "b": 1.0}) is None
    # a gained 2 s, b ended (left out), c is new (nothing to compare): 2 s of CPU over 4 s
    assert rate.cores(104.0, {"a": 7.0, "c": 50.0}) == 0.5
    assert rate.cores(104.0, {"a": 9.0}) is None  # no time between: no rate
